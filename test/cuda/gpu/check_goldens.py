# Runs the golden CUDA files (test/cuda/golden/*.cu) on a real GPU through their C launchers
# and compares with torch references. For the GPU machine (Python + torch + nvcc, no Node):
#   python3 test/cuda/gpu/check_goldens.py [arch]
# Exit status 0 only if every check passes.
import ctypes, os, subprocess, sys, tempfile
import torch

ARCH = sys.argv[1] if len(sys.argv) > 1 else "sm_90a"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = tempfile.mkdtemp(prefix="tilemoe-golden-")
failures = []

def build(name):
    so = os.path.join(BUILD, f"lib{name}.so")
    gencode = "-gencode=arch=compute_90a,code=sm_90a" if ARCH == "sm_90a" else f"-arch={ARCH}"
    subprocess.run(["nvcc", "-shared", "-Xcompiler", "-fPIC", gencode, "-O3", "-std=c++17",
                    "-o", so, os.path.join(ROOT, "golden", f"{name}.cu")], check=True)
    lib = ctypes.CDLL(so)
    getattr(lib, f"{name}_error_string").restype = ctypes.c_char_p
    return lib

def check(what, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + what + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        failures.append(what)

P = lambda t: ctypes.c_void_p(t.data_ptr())
I64 = ctypes.c_int64
NULL = ctypes.c_void_p(0)
dev = "cuda"
torch.manual_seed(0)

# copy2d: masked 16-byte vector copies through shared memory.
lib = build("copy2d")
for M, K in [(37, 72), (64, 64), (1, 8), (100, 200)]:
    A = torch.randn(M, K, dtype=torch.bfloat16, device=dev)
    C = torch.full((M, K), 7.0, dtype=torch.bfloat16, device=dev)
    rc = lib.copy2d(P(A), P(C), I64(M), I64(K), NULL)
    torch.cuda.synchronize()
    check(f"copy2d M={M} K={K}", rc == 0 and torch.equal(A, C), f"rc={rc}")
A = torch.randn(8, 16, dtype=torch.bfloat16, device=dev)
C = torch.empty_like(A)
check("copy2d misaligned pointer -> ERR_ALIGN", lib.copy2d(ctypes.c_void_p(A.data_ptr() + 2), P(C), I64(8), I64(8), NULL) == 4)
check("copy2d negative dim -> ERR_DIM", lib.copy2d(P(A), P(C), I64(-1), I64(16), NULL) == 1)
check("copy2d dim above INT32_MAX -> ERR_DIM", lib.copy2d(P(A), P(C), I64(1 << 31), I64(16), NULL) == 1)
check("copy2d M=0 -> OK without launch (null pointers allowed)", lib.copy2d(NULL, NULL, I64(0), I64(16), NULL) == 0)
check("copy2d null pointer with elements -> ERR_NULL", lib.copy2d(NULL, P(C), I64(8), I64(16), NULL) == 3)
check("copy2d grid y too large -> ERR_GRID", lib.copy2d(P(A), P(C), I64(32 * 65536), I64(16), NULL) == 5)
check("copy2d error string", lib.copy2d_error_string(4).decode().startswith("copy2d: a tensor pointer is misaligned"))

# rowsum: 2-stage cp.async pipeline with zero-filled ragged edges.
lib = build("rowsum")
for M, K in [(45, 200), (16, 64), (3, 8), (70, 1000)]:
    X = torch.randn(M, K, dtype=torch.bfloat16, device=dev)
    Y = torch.zeros(M, dtype=torch.float32, device=dev)
    rc = lib.rowsum(P(X), P(Y), I64(M), I64(K), NULL)
    torch.cuda.synchronize()
    ref = X.double().sum(1).float()
    err = (Y - ref).abs().max().item()
    check(f"rowsum M={M} K={K}", rc == 0 and err < 1e-3 * (1 + ref.abs().max().item()), f"rc={rc} max err {err:.3g}")

# mma16x8: ldmatrix x4 / x2 + mma.sync m16n8k16 bf16, f32 accumulate.
lib = build("mma16x8")
for M, N, K in [(16, 8, 16), (33, 20, 48), (64, 64, 128), (5, 3, 16)]:
    A = torch.randn(M, K, dtype=torch.bfloat16, device=dev)
    B = torch.randn(N, K, dtype=torch.bfloat16, device=dev)
    Cm = torch.full((M, N), float("nan"), dtype=torch.float32, device=dev)
    rc = lib.mma16x8(P(A), P(B), P(Cm), I64(M), I64(N), I64(K), NULL)
    torch.cuda.synchronize()
    ref = (A.double() @ B.double().T).float()
    err = (Cm - ref).abs().max().item()
    check(f"mma16x8 M={M} N={N} K={K}", rc == 0 and err < 1e-3, f"rc={rc} max err {err:.3g}")

# epilogue: vector/scalar paths, bias, int4 nibble, silu/gelu, bf16 rounding on store.
lib = build("epilogue")
for M, N, K, act in [(5, 300, 4, 0), (3, 301, 4, 1), (2, 1024, 0, 0), (1, 7, 2, 1)]:
    X = torch.randn(M, N, dtype=torch.float32, device=dev)
    bias = torch.randn(N, dtype=torch.bfloat16, device=dev)
    Wq = torch.randint(0, 256, (N, max(K // 2, 1)), dtype=torch.uint8, device=dev)
    Y = torch.zeros(M, N, dtype=torch.bfloat16, device=dev)
    rc = lib.epilogue(P(X), P(bias), P(Wq), P(Y), ctypes.c_float(0.5), ctypes.c_int(act), I64(M), I64(N), I64(K), NULL)
    torch.cuda.synchronize()
    h = X.double() * 0.5 + bias.double()
    if K > 0:
        h = h + ((Wq[:, 0].int() & 15) - 8).double() * 0.125
    g = h * torch.sigmoid(h) if act == 0 else 0.5 * h * (1 + torch.erf(h * 0.7071067811865476))
    ref = g.to(torch.bfloat16)
    ulps = ((Y.float() - ref.float()).abs() / ref.float().abs().clamp_min(1e-30)).max().item()
    check(f"epilogue M={M} N={N} K={K} act={act}", rc == 0 and ulps <= 2 ** -7, f"rc={rc} max rel diff {ulps:.3g}")
check("epilogue K odd (shape K / 2) -> ERR_SHAPE", lib.epilogue(P(X), P(bias), P(Wq), P(Y), ctypes.c_float(0.5), ctypes.c_int(0), I64(1), I64(7), I64(3), NULL) == 2)

print(f"{len(failures)} failure(s)" if failures else "all checks passed")
sys.exit(1 if failures else 0)
