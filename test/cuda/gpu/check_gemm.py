# Runs emitted gemm launchers (.cu files named <kernel>_<tag>.cu in the folder given) on the GPU
# and compares C = A * B^T with torch in float64. python3 check_gemm.py DIR [arch]
import ctypes, glob, os, subprocess, sys, tempfile
import torch

folder = sys.argv[1]
ARCH = sys.argv[2] if len(sys.argv) > 2 else "sm_90a"
build = tempfile.mkdtemp(prefix="tilemoe-gemm-")
failures = []
torch.manual_seed(0)
for cu in sorted(glob.glob(os.path.join(folder, "gemm_*.cu"))):
    name = os.path.basename(cu)[:-3]
    so = os.path.join(build, f"lib{name}.so")
    gencode = "-gencode=arch=compute_90a,code=sm_90a" if ARCH == "sm_90a" else f"-arch={ARCH}"
    subprocess.run(["nvcc", "-shared", "-Xcompiler", "-fPIC", gencode, "-O3", "-std=c++17", "-o", so, cu], check=True)
    lib = ctypes.CDLL(so)
    dt = torch.bfloat16 if "bf16" in name else torch.float16
    for M, N, K in [(150, 150, 100), (128, 128, 128), (1, 7, 8), (257, 300, 264), (64, 64, 33)]:
        A = (torch.rand(M, K, device="cuda") * 2 - 1).to(dt)
        B = (torch.rand(N, K, device="cuda") * 2 - 1).to(dt)
        C = torch.full((M, N), float("nan"), device="cuda").to(dt)
        rc = getattr(lib, name)(ctypes.c_void_p(A.data_ptr()), ctypes.c_void_p(B.data_ptr()), ctypes.c_void_p(C.data_ptr()),
                                ctypes.c_int64(M), ctypes.c_int64(K), ctypes.c_int64(N), ctypes.c_void_p(0))
        torch.cuda.synchronize()
        ref = A.double() @ B.double().T
        err = (C.double() - ref).abs().max().item()
        tol = 2 ** -7 * ref.abs().max().item() + 1e-2
        ok = rc == 0 and err <= tol
        print(("PASS " if ok else "FAIL ") + f"{name} M={M} N={N} K={K} rc={rc} max err {err:.3g} (tol {tol:.3g})", flush=True)
        if not ok:
            failures.append(name)
print(f"{len(failures)} failure(s)" if failures else "all checks passed")
sys.exit(1 if failures else 0)
