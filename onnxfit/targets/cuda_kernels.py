"""CPUExecutionProvider kernel registry of onnxruntime 1.32.0, as data for targets/cuda.py.

Generated with `python reports/cuda_gpu.py kernels --provider CPUExecutionProvider`; do not edit.
One kernel per line: [domain:]Op start[-end] Constraint=dtype,... (no end: and later).
"""

ORT_VERSION = "1.32"

KERNELS = """
Abs 6-12 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Abs 13 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Acos 7-21 T=float
Acos 22 T=float
Acosh 9-21 T=float
Acosh 22 T=float
Add 7-12 T=double,float,int32,int64,uint32,uint64
Add 13-13 T=double,float,int32,int64,uint32,uint64
Add 14 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Affine 1 T=float
AffineGrid 20 T1=double,float T2=int64
And 7 T=bool T1=bool
ArgMax 1-10 T=double,float,int32,int64,int8,uint8
ArgMax 11-12 T=double,float,int32,int64,int8,uint8
ArgMax 13 T=double,float,int32,int64,int8,uint8
ArgMin 1-10 T=double,float,int32,int64,int8,uint8
ArgMin 11-12 T=double,float,int32,int64,int8,uint8
ArgMin 13 T=double,float,int32,int64,int8,uint8
Asin 7-21 T=float
Asin 22 T=float
Asinh 9-21 T=float
Asinh 22 T=float
Atan 7-21 T=float
Atan 22 T=float
Atanh 9-21 T=float
Atanh 22 T=float
Attention 23-23 T1=float,float16 T2=float,float16 U=bool,float,float16
Attention 24 T1=float,float16 T2=float,float16 U=bool,float,float16
AveragePool 7-9 T=float
AveragePool 10-10 T=float
AveragePool 11-18 T=float
AveragePool 19-21 T=float
AveragePool 22 T=float
BatchNormalization 7-8 T=double,float
BatchNormalization 9-13 T=double,float
BatchNormalization 14-14 T=double,float U=double,float
BatchNormalization 15 T=double,float T1=double,float T2=double,float
BitCast 26 T1=bfloat16,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T2=bfloat16,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
BitShift 11-27 T=uint16,uint32,uint64,uint8
BitShift 28 T=int16,int32,int64,int8,uint16,uint32,uint64,uint8
BitwiseAnd 18 T=int16,int32,int64,int8,uint16,uint32,uint64,uint8
BitwiseNot 18 T=int16,int32,int64,int8,uint16,uint32,uint64,uint8
BitwiseOr 18 T=int16,int32,int64,int8,uint16,uint32,uint64,uint8
BitwiseXor 18 T=int16,int32,int64,int8,uint16,uint32,uint64,uint8
BlackmanWindow 17 T1=int32,int64 T2=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Cast 6-12 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 13-18 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 19-20 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 21-22 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 23-23 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 24-24 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 25-27 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Cast 28 T1=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,float8e8m0,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Ceil 6-12 T=double,float
Ceil 13 T=double,float
Celu 12-27 T=float
Celu 28 T=bfloat16,double,float,float16
Clip 6-10 T=float
Clip 11-11 T=float
Clip 12-12 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
Clip 13 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
Col2Im 18 T=float
Compress 9-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=bool
Compress 11-27 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=bool
Compress 28 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=bool
Concat 4-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Concat 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Concat 13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ConcatFromSequence 11 S=
ConstantOfShape 9-19 T1=int64 T2=bfloat16,bool,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
ConstantOfShape 20-20 T1=int64 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
ConstantOfShape 21-22 T1=int64 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
ConstantOfShape 23-23 T1=int64 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
ConstantOfShape 24-24 T1=int64 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
ConstantOfShape 25 T1=int64 T2=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Conv 1-10 T=float
Conv 11-21 T=float
Conv 22 T=float
ConvInteger 10 T1=int8,uint8 T2=int8,uint8 T3=int32
ConvTranspose 1-10 T=float
ConvTranspose 11-21 T=float
ConvTranspose 22 T=float
Cos 7-21 T=double,float
Cos 22 T=double,float
Cosh 9-21 T=float
Cosh 22 T=float
Crop 1 T=float
CumProd 26 T=double,float,int32,int64,uint32,uint64 T2=int32,int64
CumSum 11-13 T=double,float,int32,int64 T2=int32,int64
CumSum 14 T=double,float,int32,int64 T2=int32,int64
DFT 17-19 T1=double,float T2=int32,int64
DFT 20 T1=double,float T2=int32,int64
DeformConv 19-21 T=double,float
DeformConv 22 T=double,float
DepthToSpace 1-10 T=double,float
DepthToSpace 11-12 T=double,float,int8,uint8
DepthToSpace 13-27 T=double,float,int8,uint8
DepthToSpace 28 T=double,float,int8,uint8
DequantizeLinear 10-12 T=int32,int8,uint8
DequantizeLinear 13-18 T=int32,int8,uint8
DequantizeLinear 19-20 T1=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int32,int8,uint8 T2=float,float16
DequantizeLinear 21-22 T1=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int8,uint16,uint4,uint8 T2=float,float16
DequantizeLinear 23-23 T1=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int8,uint16,uint4,uint8 T2=float,float16 T3=float,float16
DequantizeLinear 24-24 T1=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int8,uint16,uint4,uint8 T2=float,float16 T3=float,float16
DequantizeLinear 25 T1=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int8,uint16,uint2,uint4,uint8 T2=float,float16 T3=float,float16
Det 11-21 T=float
Det 22 T=float
Div 7-12 T=double,float,int32,int64,uint32,uint64
Div 13-13 T=double,float,int32,int64,uint32,uint64
Div 14 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Dropout 7-9 T=double,float,float16
Dropout 10-11 T=double,float,float16 T1=bool
Dropout 12-12 T=double,float T1=double,float T2=bool
Dropout 13-21 T=double,float T1=double,float T2=bool
Dropout 22 T=double,float T1=double,float T2=bool
DynamicQuantizeLinear 11 T2=uint8
DynamicSlice 1 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Einsum 12-27 T=double,float,int32,int64
Einsum 28 T=bfloat16,double,float,int32,int64
Elu 6-21 T=float
Elu 22 T=float
Equal 7-10 T=bool,double,float,int32,int64 T1=bool
Equal 11-12 T=bool,double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
Equal 13-18 T=bool,double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
Equal 19 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=bool
Erf 9-12 T=float
Erf 13 T=float
Exp 6-12 T=double,float
Exp 13 T=double,float
Expand 8-12 T=bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Expand 13 T=bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
EyeLike 9-21 T1=double,float,int32,int64,uint64 T2=double,float,int32,int64,uint64
EyeLike 22 T1=double,float,int32,int64,uint64 T2=double,float,int32,int64,uint64
Flatten 1-8 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 9-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 13-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 21-22 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 23-23 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 24-24 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Flatten 25 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Floor 6-12 T=double,float
Floor 13 T=double,float
GRU 7-13 T=double,float T1=int32
GRU 14-21 T=double,float T1=int32
GRU 22 T=double,float T1=int32
Gather 1-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Gather 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Gather 13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
GatherElements 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
GatherElements 13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
GatherND 11-11 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 indices=int64
GatherND 12-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 indices=int64
GatherND 13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 indices=int64
Gelu 20 T=float
Gemm 7-8 T=double,float
Gemm 9-10 T=double,float
Gemm 11-12 T=double,float
Gemm 13 T=double,float
GlobalAveragePool 1-21 T=float
GlobalAveragePool 22 T=float
GlobalLpPool 2 T=float
GlobalMaxPool 1-21 T=float
GlobalMaxPool 22 T=float
Greater 7-8 T=double,float T1=bool
Greater 9-12 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
Greater 13 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
GreaterOrEqual 12-15 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
GreaterOrEqual 16 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
GridSample 16-19 T1=float T2=float
GridSample 20-21 T1=double,float T2=double,float
GridSample 22 T1=double,float T2=double,float
HammingWindow 17 T1=int32,int64 T2=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
HannWindow 17 T1=int32,int64 T2=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
HardSigmoid 6-21 T=float
HardSigmoid 22 T=float
Hardmax 1-10 T=float
Hardmax 11-12 T=float
Hardmax 13 T=float
Identity 1-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 13-13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 14-15 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 16-18 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 19-20 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 21-22 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 23-23 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 24-24 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Identity 25 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 1-10 B=bool V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 11-12 B=bool V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 13-15 B=bool V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 16-18 B=bool V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 19-20 B=bool V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 21-22 B=bool V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 23-23 B=bool V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 24-24 B=bool V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
If 25 B=bool V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ImageScaler 1 T=float
InstanceNormalization 6-21 T=float
InstanceNormalization 22 T=float
IsInf 10-19 T1=double,float T2=bool
IsInf 20 T1=bfloat16,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz T2=bool
IsNaN 9-12 T1=double,float,float16 T2=bool
IsNaN 13-19 T1=double,float,float16 T2=bool
IsNaN 20 T1=bfloat16,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz T2=bool
LRN 1-12 T=float
LRN 13 T=float
LSTM 7-13 T=double,float T1=int32
LSTM 14-21 T=double,float T1=int32
LSTM 22 T=double,float T1=int32
LayerNormalization 1-16 T=bfloat16,double,float,float16 U=float V=bfloat16,double,float,float16
LayerNormalization 17 T=bfloat16,double,float,float16 U=float
LeakyRelu 6-15 T=float
LeakyRelu 16 T=float
Less 7-8 T=double,float T1=bool
Less 9-12 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
Less 13 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
LessOrEqual 12-15 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
LessOrEqual 16 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8 T1=bool
Log 6-12 T=double,float
Log 13 T=double,float
LogSoftmax 1-10 T=double,float
LogSoftmax 11-12 T=double,float
LogSoftmax 13 T=double,float
Loop 1-10 B=bool I=int64 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 11-12 B=bool I=int64 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 13-15 B=bool I=int64 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 16-18 B=bool I=int64 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 19-20 B=bool I=int64 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 21-22 B=bool I=int64 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 23-23 B=bool I=int64 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 24-24 B=bool I=int64 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Loop 25 B=bool I=int64 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
LpNormalization 1-21 T=double,float
LpNormalization 22 T=double,float
LpPool 2-10 T=float
LpPool 11-17 T=float
LpPool 18-21 T=float
LpPool 22 T=float
MatMul 1-8 T=double,float
MatMul 9-12 T=double,float,int32,int64,uint32,uint64
MatMul 13 T=double,float,int32,int64,uint32,uint64
MatMulInteger 10 T1=int8,uint8 T2=int8,uint8 T3=int32
Max 6-7 T=float
Max 8-11 T=double,float
Max 12-12 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
Max 13 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
MaxPool 1-7 T=float
MaxPool 8-11 I=int64 T=double,float
MaxPool 12-21 I=int64 T=double,float,int8,uint8
MaxPool 22 I=int64 T=double,float,int8,uint8
MaxRoiPool 1 T=float
MaxUnpool 9-10 T1=float T2=int64
MaxUnpool 11-21 T1=float T2=int64
MaxUnpool 22 T1=float T2=int64
Mean 6-7 T=float
Mean 8-12 T=float
Mean 13 T=float
MeanVarianceNormalization 1-8 T=float
MeanVarianceNormalization 9-12 T=float
MeanVarianceNormalization 13 T=float
MelWeightMatrix 17 T1=int32,int64 T2=float T3=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
MemcpyFromHost 1 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
MemcpyToHost 1 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Min 6-7 T=float
Min 8-11 T=double,float
Min 12-12 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
Min 13 T=double,float,float16,int32,int64,int8,uint32,uint64,uint8
Mod 10-12 T=double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Mod 13-27 T=double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Mod 28 T=double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Mul 7-12 T=double,float,int32,int64,uint32,uint64
Mul 13-13 T=double,float,int32,int64,uint32,uint64
Mul 14 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Multinomial 7 T1=float T2=int32,int64
Neg 6-12 T=double,float,int16,int32,int64,int8
Neg 13 T=double,float,int16,int32,int64,int8
NonMaxSuppression 10-10
NonMaxSuppression 11
NonZero 9-12 T=bool,float,int32,int64,uint8
NonZero 13 T=bool,float,int32,int64,uint8
Not 1 T=bool
OneHot 9-10 T1=float,int32,int64 T2=float,int32,int64 T3=float,int32,int64,string
OneHot 11-27 T1=float,int32,int64 T2=float,int32,int64 T3=float,int32,int64,string
OneHot 28 T1=float,int32,int64 T2=float,int32,int64 T3=bfloat16,float,int32,int64,string
Optional 15 O= V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
OptionalGetElement 15-17 O= V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
OptionalGetElement 18 O=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
OptionalHasElement 15-17 B=bool O=
OptionalHasElement 18 B=bool O=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Or 7 T=bool T1=bool
PRelu 7-8 T=float
PRelu 9-15 T=float
PRelu 16 T=float
Pad 2-10 T=double,float
Pad 11-12 T=double,float,int32,int64,int8,uint32,uint64,uint8
Pad 13-17 T=bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 18-18 T=bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 19-20 T=bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 21-22 T=bfloat16,bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 23-23 T=bfloat16,bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 24-24 T=bfloat16,bool,double,float,int32,int64,int8,uint32,uint64,uint8
Pad 25 T=bfloat16,bool,double,float,int32,int64,int8,uint32,uint64,uint8
ParametricSoftplus 1 T=float
Pow 7-11 T=double,float
Pow 12-12 T=double,float,int32,int64 T1=double,float,int32,int64
Pow 13-14 T=double,float,int32,int64 T1=double,float,int32,int64
Pow 15 T=double,float,int32,int64 T1=double,float,int32,int64
QLinearConv 10 T1=int8,uint8 T2=int8,uint8 T3=int8,uint8 T4=int32
QLinearMatMul 10-20 T1=int8,uint8 T2=int8,uint8 T3=int8,uint8
QLinearMatMul 21 T1=int8,uint8 T2=int8,uint8 T3=int8,uint8 TS=float
QuantizeLinear 10-12 T1=float T2=int8,uint8
QuantizeLinear 13-18 T1=float T2=int8,uint8
QuantizeLinear 19-20 T1=float,float16 T2=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int8,uint8
QuantizeLinear 21-22 T1=float,float16 T2=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int4,int8,uint16,uint4,uint8
QuantizeLinear 23-23 T1=float,float16 T2=float,float16 T3=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int4,int8,uint16,uint4,uint8
QuantizeLinear 24-24 T1=float,float16 T2=float,float16 T3=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int4,int8,uint16,uint4,uint8
QuantizeLinear 25 T1=float,float16 T2=float,float16 T3=float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int4,int8,uint16,uint2,uint4,uint8
RMSNormalization 23 T=double,float,float16 V=double,float,float16
RNN 7-13 T=float T1=int32
RNN 14-21 T=float T1=int32
RNN 22 T=float T1=int32
RandomNormal 1 T=double,float
RandomNormalLike 1 T1=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T2=double,float
RandomUniform 1 T=double,float
RandomUniformLike 1 T1=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T2=double,float
Range 11-26 T=double,float,int16,int32,int64
Range 27 T=double,float,int16,int32,int64
Reciprocal 6-12 T=double,float
Reciprocal 13 T=double,float
ReduceL1 1-10 T=double,float,int32,int64
ReduceL1 11-12 T=double,float,int32,int64
ReduceL1 13-17 T=double,float,int32,int64
ReduceL1 18 T=double,float,int32,int64
ReduceL2 1-10 T=double,float,int32,int64
ReduceL2 11-12 T=double,float,int32,int64
ReduceL2 13-17 T=double,float,int32,int64
ReduceL2 18 T=double,float,int32,int64
ReduceLogSum 1-10 T=double,float,int32,int64
ReduceLogSum 11-12 T=double,float,int32,int64
ReduceLogSum 13-17 T=double,float,int32,int64
ReduceLogSum 18 T=double,float,int32,int64
ReduceLogSumExp 1-10 T=double,float,int32,int64
ReduceLogSumExp 11-12 T=double,float,int32,int64
ReduceLogSumExp 13-17 T=double,float,int32,int64
ReduceLogSumExp 18 T=double,float,int32,int64
ReduceMax 1-10 T=double,float,int32,int64
ReduceMax 11-11 T=double,float,int32,int64
ReduceMax 12-12 T=double,float,int32,int64,int8,uint8
ReduceMax 13-17 T=double,float,int32,int64,int8,uint8
ReduceMax 18-19 T=double,float,int32,int64,int8,uint8
ReduceMax 20 T=bool,double,float,int32,int64,int8,uint8
ReduceMean 1-10 T=double,float,int32,int64
ReduceMean 11-12 T=double,float,int32,int64
ReduceMean 13-17 T=double,float,int32,int64
ReduceMean 18 T=double,float,int32,int64
ReduceMin 1-10 T=double,float,int32,int64
ReduceMin 11-11 T=double,float,int32,int64
ReduceMin 12-12 T=double,float,int32,int64,int8,uint8
ReduceMin 13-17 T=double,float,int32,int64,int8,uint8
ReduceMin 18-19 T=double,float,int32,int64,int8,uint8
ReduceMin 20 T=bool,double,float,int32,int64,int8,uint8
ReduceProd 1-10 T=double,float,int32,int64
ReduceProd 11-12 T=double,float,int32,int64
ReduceProd 13-17 T=double,float,int32,int64
ReduceProd 18 T=double,float,int32,int64
ReduceSum 1-10 T=double,float,int32,int64
ReduceSum 11-12 T=double,float,int32,int64
ReduceSum 13 T=double,float,int32,int64
ReduceSumSquare 1-10 T=double,float,int32,int64
ReduceSumSquare 11-12 T=double,float,int32,int64
ReduceSumSquare 13-17 T=double,float,int32,int64
ReduceSumSquare 18 T=double,float,int32,int64
RegexFullMatch 20 T1=string T2=bool
Relu 6-12 T=double,float
Relu 13-13 T=double,float
Relu 14 T=double,float,int32,int8
Reshape 1-4 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Reshape 5-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 13-13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 14-18 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 19-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 21-22 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 23-23 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 24-24 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Reshape 25 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 shape=int64
Resize 10-10 T=float,int32,int8,uint8
Resize 11-12 T1=float,int32,int8,uint8
Resize 13-17 T1=float,int32,int8,uint8
Resize 18-18 T1=float,int32,int8,uint8
Resize 19 T1=float,int32,int8,uint8
ReverseSequence 10-27 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ReverseSequence 28 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
RoiAlign 10-15 T1=double,float T2=int64
RoiAlign 16 T1=double,float T2=int64
RotaryEmbedding 23 M=int64 T=float,float16
Round 11-21 T=double,float,float16
Round 22 T=double,float,float16
STFT 17 T1=double,float T2=int32,int64
Scale 1 T=float
ScaledTanh 1 T=float
Scan 8-8 I=int64 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 9-10 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 11-15 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 16-18 V=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 19-20 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 21-22 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 23-23 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 24-24 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scan 25 V=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Scatter 9-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
ScatterElements 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
ScatterElements 13-15 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
ScatterElements 16-17 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
ScatterElements 18 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
ScatterND 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ScatterND 13-15 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ScatterND 16-17 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
ScatterND 18 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Selu 6-21 T=float
Selu 22 T=float
SequenceAt 11 I=int32,int64 S= T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
SequenceConstruct 11 S= T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
SequenceEmpty 11 S=
SequenceErase 11 I=int32,int64 S=
SequenceInsert 11 I=int32,int64 S=
SequenceLength 11 I=int64 S=
Shape 1-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 13-14 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 15-18 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 19-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 21-22 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 23-23 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 24-24 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shape 25 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Shrink 9 T=bfloat16,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Sigmoid 6-12 T=double,float
Sigmoid 13 T=double,float
Sign 9-12 T=bfloat16,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Sign 13 T=bfloat16,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
SimplifiedLayerNormalization 1 T=bfloat16,double,float,float16 U=float V=bfloat16,double,float,float16
Sin 7-21 T=double,float
Sin 22 T=double,float
Sinh 9-21 T=float
Sinh 22 T=float
Size 1-12 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 13-18 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 19-20 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 21-22 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 23-23 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 24-24 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Size 25 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Slice 1-9 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Slice 10-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Slice 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Slice 13 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
Softmax 1-10 T=double,float
Softmax 11-12 T=double,float
Softmax 13 T=double,float
Softplus 1-21 T=float
Softplus 22 T=float
Softsign 1-21 T=float
Softsign 22 T=float
SpaceToDepth 1-12 T=double,float,int8,uint8
SpaceToDepth 13-27 T=double,float,int8,uint8
SpaceToDepth 28 T=double,float,int8,uint8
Split 2-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Split 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Split 13-17 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Split 18 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
SplitToSequence 11-23 I=int32,int64 S= T=bool,double,float,float16,int32,int64,string
SplitToSequence 24 I=int32,int64 S= T=bool,double,float,float16,int32,int64,string
Sqrt 6-12 T=double,float
Sqrt 13 T=double,float
Squeeze 1-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 13-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 21-22 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 23-23 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 24-24 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Squeeze 25 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
StringConcat 20 T=string
StringNormalizer 10 X=string
StringSplit 20 T1=string T2=string T3=int64
Sub 7-12 T=double,float,int32,int64,uint32,uint64
Sub 13-13 T=double,float,int32,int64,uint32,uint64
Sub 14 T=double,float,int16,int32,int64,int8,uint16,uint32,uint64,uint8
Sum 6-7 T=double,float
Sum 8-12 T=double,float
Sum 13 T=double,float
Tan 7-21 T=float
Tan 22 T=float
Tanh 6-12 T=double,float
Tanh 13 T=double,float
TensorScatter 24 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,uint16,uint32,uint64,uint8
TfIdfVectorizer 9 T=int32,int64,string T1=float
ThresholdedRelu 1-9 T=float
ThresholdedRelu 10-21 T=float
ThresholdedRelu 22 T=float
Tile 6-12 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
Tile 13 T=bool,double,float,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 T1=int64
TopK 1-9 I=int64 T=double,float
TopK 10-10 I=int64 T=double,float
TopK 11-23 I=int64 T=double,float,int16,int32,int64,int8,uint8
TopK 24 I=int64 T=double,float,int16,int32,int64,int8,uint8
Transpose 1-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Transpose 13-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Transpose 21-22 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int64,int8,string,uint16,uint32,uint4,uint64,uint8
Transpose 23-23 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int64,int8,string,uint16,uint32,uint4,uint64,uint8
Transpose 24-24 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int32,int4,int64,int8,string,uint16,uint32,uint4,uint64,uint8
Transpose 25 T=bfloat16,bool,double,float,float16,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int16,int2,int32,int4,int64,int8,string,uint16,uint2,uint32,uint4,uint64,uint8
Trilu 14 T=bool,double,float,int32,int64
Unique 11-27 T=double,float,int64,int8,string
Unique 28 T=bfloat16,double,float,int64,int8,string
Unsqueeze 1-10 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 11-12 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 13-20 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 21-22 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 23-23 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 24-24 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Unsqueeze 25 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
Upsample 7-8 T=float,int32,int8,uint8
Upsample 9-9 T=float,int32,int8,uint8
Where 9-15 T=double,float,int32,int64,int8,string,uint32,uint8
Where 16 T=double,float,int32,int64,int8,string,uint32,uint8
Xor 7 T=bool T1=bool
ai.onnx.ml:ArrayFeatureExtractor 1 T=double,float,int32,int64,string
ai.onnx.ml:Binarizer 1 T=float
ai.onnx.ml:CastMap 1 T1= T2=float,int64,string
ai.onnx.ml:CategoryMapper 1 T1=int64,string T2=int64,string
ai.onnx.ml:DictVectorizer 1 T1= T2=double,float,int64,string
ai.onnx.ml:FeatureVectorizer 1 T1=double,float,int32,int64
ai.onnx.ml:Imputer 1 T=float,int64
ai.onnx.ml:LabelEncoder 1-1 T1=int64,string T2=int64,string
ai.onnx.ml:LabelEncoder 2-3 T1=float,int64,string T2=float,int64,string
ai.onnx.ml:LabelEncoder 4 T1=double,float,int64,string T2=double,float,int16,int64,string
ai.onnx.ml:LinearClassifier 1 T1=double,float,int32,int64 T2=int64,string
ai.onnx.ml:LinearRegressor 1 T=float
ai.onnx.ml:Normalizer 1 T=double,float,int32,int64
ai.onnx.ml:OneHotEncoder 1 T=double,float,int64,string
ai.onnx.ml:SVMClassifier 1 T1=double,float,int32,int64 T2=int64,string
ai.onnx.ml:SVMRegressor 1 T=float
ai.onnx.ml:Scaler 1 T=double,float,int32,int64
ai.onnx.ml:TreeEnsemble 5 T=double,float
ai.onnx.ml:TreeEnsembleClassifier 1-2 T1=double,float,int32,int64 T2=int64,string
ai.onnx.ml:TreeEnsembleClassifier 3 T1=double,float,int32,int64 T2=int64,string
ai.onnx.ml:TreeEnsembleRegressor 1-2 T=double,float
ai.onnx.ml:TreeEnsembleRegressor 3 T=double,float
ai.onnx.ml:ZipMap 1 T=
com.microsoft:Attention 1 T=float
com.microsoft:AttnLSTM 1 T=double,float T1=int32
com.microsoft:BeamSearch 1 T=float
com.microsoft:BiasGelu 1 T=float
com.microsoft:BifurcationDetector 1 T=int64
com.microsoft:BranchwiseRMSNorm 1 M=bfloat16,float,float16 T=bfloat16,float,float16
com.microsoft:CDist 1 T=double,float
com.microsoft:CausalConvWithState 1 T=float
com.microsoft:ConvTransposeWithDynamicPads 1 T=float
com.microsoft:CropAndResize 1 T1=float T2=int32
com.microsoft:DecoderMaskedMultiHeadAttention 1 T=float
com.microsoft:DequantizeLinear 1 T1=int16,int32,int4,int8,uint16,uint4,uint8 T2=float
com.microsoft:DynamicQuantizeLSTM 1 T=float T1=int32 T2=int8,uint8
com.microsoft:DynamicQuantizeMatMul 1 T1=float T2=int8,uint8
com.microsoft:DynamicTimeWarping 1 F=float I=int32
com.microsoft:EmbedLayerNormalization 1 T=float
com.microsoft:EngramGate 1 T=float,float16
com.microsoft:ExpandDims 1 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 axis=int32
com.microsoft:FastGelu 1 T=float
com.microsoft:FusedConv 1 T=float
com.microsoft:FusedGemm 1 T=float
com.microsoft:FusedMatMul 1 T=double,float
com.microsoft:GatedAdd 1 T=float,float16
com.microsoft:GatedDeltaNet 1 T=bfloat16,float,float16 TG=bfloat16,float,float16 TI=int32 TS=float
com.microsoft:GatedRMSNorm 1 T=bfloat16,float,float16
com.microsoft:GatherBlockQuantized 1 T1=float4e2m1,float8e4m3fn,float8e4m3fnuz,float8e5m2,float8e5m2fnuz,int4,uint4,uint8 T2=float,float16 Tind=int32,int64
com.microsoft:GatherND 1 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8 Tind=int32,int64
com.microsoft:GatherPacked 1 T1=uint8 T2=bfloat16,float,float16 Tind=int32,int64
com.microsoft:Gelu 1 T=float
com.microsoft:GreedySearch 1 T=float
com.microsoft:GridSample 1 T1=float T2=float
com.microsoft:GroupQueryAttention 1 M=int32 T=float,float16 T_CACHE=float,float16,int8,uint8 T_KV_SCALE=float
com.microsoft:HyperConnectionPostMix 1 M=bfloat16,float,float16 T=bfloat16,float,float16
com.microsoft:HyperConnectionPreMix 1 M=bfloat16,float,float16 T=bfloat16,float,float16
com.microsoft:Inverse 1 T=double,float,float16
com.microsoft:LinearAttention 1 T=float
com.microsoft:LinearAttentionGate 1 T=bfloat16,float,float16 TF=float
com.microsoft:MRotaryEmbedding 1 M=int64 T=float,float16
com.microsoft:MatMulBnb4 1 T1=float T2=uint8
com.microsoft:MatMulFpQ4 1 T1=float T2=uint8 T3=int64
com.microsoft:MatMulInteger16 1 T1=int16 T2=int16 T3=int32
com.microsoft:MatMulIntegerToFloat 1 T1=int8,uint8 T2=int8,uint8 T3=float
com.microsoft:MatMulNBits 1 T1=float,float16 T2=uint8 T3=float,float16,uint8 T4=int32
com.microsoft:MaxpoolWithMask 1 T=float
com.microsoft:MoE 1 T=float
com.microsoft:MoEGroupRouter 1 T=bfloat16,float,float16 TF=float
com.microsoft:MultiHeadAttention 1 T=float
com.microsoft:MurmurHash3 1 T1=double,float,int32,int64,string,uint32,uint64 T2=int32,uint32
com.microsoft:NGramHashMapping 1 M=int32,int64
com.microsoft:NGramRepeatBlock 1 T=float Tid=int64
com.microsoft:NhwcMaxPool 1 T=int8,uint8
com.microsoft:Pad 1 T=float
com.microsoft:QAttention 1 T1=uint8 T2=int8,uint8 T3=float T4=int32
com.microsoft:QEmbedLayerNormalization 1 T=float
com.microsoft:QGemm 1 T=float TA=int8,uint8 TB=int8,uint8 TC=int32 TY=float,int8,uint8 TYZ=int8,uint8
com.microsoft:QLinearAdd 1 T=int8,uint8
com.microsoft:QLinearAveragePool 1
com.microsoft:QLinearConcat 1
com.microsoft:QLinearConv 1 T1=int8,uint8 T2=int8,uint8 T3=int8,uint8 T4=int32
com.microsoft:QLinearGlobalAveragePool 1
com.microsoft:QLinearLeakyRelu 1 T=int8,uint8
com.microsoft:QLinearMul 1 T=int8,uint8
com.microsoft:QLinearSigmoid 1 T=int8,uint8
com.microsoft:QLinearSoftmax 1 T=int8,uint8
com.microsoft:QLinearWhere 1 T=int8,uint8
com.microsoft:QMoE 1 T=bfloat16,float,float16 T1=uint8 T2=bfloat16,float,float16,float8e4m3fn,float8e8m0 T4=float
com.microsoft:QuantizeLinear 1 T1=float T2=int16,int4,int8,uint16,uint4,uint8
com.microsoft:QuickGelu 1 T=float
com.microsoft:Range 1 T=double,float,int16,int32,int64
com.microsoft:RotaryEmbedding 1 M=int64 T=float,float16
com.microsoft:SampleOp 1 T=float
com.microsoft:Sampling 1 T=float
com.microsoft:ScaledSiLU 1 M=bfloat16,float,float16 T=bfloat16,float,float16
com.microsoft:SkipLayerNormalization 1 T=bfloat16,double,float,float16
com.microsoft:SkipSimplifiedLayerNormalization 1 T=bfloat16,double,float,float16
com.microsoft:SparseAttention 1 M=int32 T=float,float16
com.microsoft:SparseToDenseMatMul 1 T= T1=double,float,int32,int64,uint32,uint64
com.microsoft:Tokenizer 1 T=string
com.microsoft:TransposeMatMul 1 T=float
com.microsoft:Trilu 1 T=double,float,int64
com.microsoft:UnfoldTensor 1 T=bfloat16,bool,double,float,float16,int16,int32,int64,int8,string,uint16,uint32,uint64,uint8
com.microsoft:Unique 1 T=float
com.microsoft:VarlenCausalConvWithState 1 M=int32 T=bfloat16,float,float16
com.microsoft:VarlenNGramHashMapping 1 M=int32,int64 S=int32
com.microsoft:WhisperBeamSearch 1 T=float
com.microsoft:WordConvEmbedding 1 T=int32 T1=float
com.microsoft.nchwc:AveragePool 1 T=float
com.microsoft.nchwc:Conv 1 T=float
com.microsoft.nchwc:GlobalAveragePool 1 T=float
com.microsoft.nchwc:GlobalMaxPool 1 T=float
com.microsoft.nchwc:MaxPool 1 T=float
com.microsoft.nchwc:ReorderInput 1 T=float
com.microsoft.nchwc:ReorderOutput 1 T=float
com.microsoft.nchwc:Upsample 1 T=float
"""
