"""What each execution provider needs: Target presets (which passes), EP support profiles, and the
partitions a model makes on an EP (estimated from the profile, or read from a real session)."""

from onnxfit.targets.presets import TARGETS, Target, auto_target, get_target, target_names

__all__ = ["TARGETS", "Target", "auto_target", "get_target", "target_names"]
