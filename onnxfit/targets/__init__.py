"""What each execution provider needs: Target presets (which passes) and EP support profiles."""

from onnxfit.targets.presets import TARGETS, Target, get_target, target_names

__all__ = ["TARGETS", "Target", "get_target", "target_names"]
