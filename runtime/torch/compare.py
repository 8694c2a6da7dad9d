#!/usr/bin/env python3
"""Builds a generated tilemoe MoE layer (runtime/torch/generated/moe_layer_<model>_<weights>.cu,
made by `tilemoe build-layer`) into a PyTorch extension and compares it with a plain PyTorch MoE
(softmax top-k, renormalized, SiLU(gate) * up, down, weighted sum) on random weights.
Prints max error and times. Needs a GPU with sm_90a (H100/H200) and nvcc; no Node.js.

  python3 runtime/torch/compare.py [--layer qwen3_bf16] [--combine atomic|reduce|reduce_bf16] [--tokens 1,16,64,256] [--iters 20]

Without --combine each entry of the layer's choice table has its own top-k combine (bf16: atomics
for the decode entry, the separate reduction for the prefill entry); --combine forces every entry
to one (the layer moe_layer_<model>_<weights>_<combine>). The launcher's API is the same either way.
"""
import argparse, os, pathlib, shutil, subprocess, time
import torch
from torch.utils.cpp_extension import load

HERE = pathlib.Path(__file__).resolve().parent
MODELS = {"mixtral": dict(E=8, H=4096, N=14336, K=2), "qwen3": dict(E=128, H=2048, N=768, K=8)}


def build(layer, combine=None):
    model, weights = layer.rsplit("_", 1)
    if combine:
        layer = f"{layer}_{combine}"
    stem = f"moe_layer_{layer}"
    gen = HERE / "generated"
    forced = ["--combine", combine] if combine else []
    # Generated fresh from the current compiler (scripts/gpu-run.sh puts node on the PATH);
    # without node, a folder generated elsewhere is used as it is.
    if shutil.which("node"):
        subprocess.run(["node", str(HERE.parents[1] / "bin/tilemoe.js"), "build-layer", "--model", model, "--weights", weights,
                        *forced, "-o", str(gen)], check=True, stdout=subprocess.DEVNULL)
    if not (gen / f"{stem}.cu").exists():
        raise SystemExit(f"{gen}/{stem}.cu is missing: run this through `bash scripts/gpu-run.sh python3 ...` (which provides node), "
                         f"or generate it with `node bin/tilemoe.js build-layer --model {model} --weights {weights} {' '.join(forced)} -o runtime/torch/generated`")
    w4 = weights == "w4a16"
    build_dir = pathlib.Path(os.environ.get("TILEMOE_TORCH_BUILD", f"/tmp/tilemoe_torch_{layer}"))
    build_dir.mkdir(parents=True, exist_ok=True)
    binding = build_dir / f"{stem}_binding.cpp"
    binding.write_text((HERE / "binding.cpp.in").read_text().replace("@STEM@", stem).replace("@W4@", "1" if w4 else "0"))
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0a")  # wgmma: sm_90a only
    return load(name=f"tilemoe_{layer}", sources=[str(binding), str(gen / f"{stem}.cu")], extra_include_paths=[str(gen)],
                extra_cuda_cflags=["-gencode=arch=compute_90a,code=sm_90a", "-O3"], build_directory=str(build_dir), verbose=False)


def pack_u4_interleaved(q):
    """q [R, C] ints in 0..15 -> int32 words [R, C/8]; value i of a word at slot (i>>1) + (i&1)*4 (docs/QUANT.md)."""
    R, C = q.shape
    q = q.view(R, C // 8, 8).to(torch.int64)
    words = torch.zeros(R, C // 8, dtype=torch.int64, device=q.device)
    for i in range(8):
        words |= q[:, :, i] << (4 * ((i >> 1) + (i & 1) * 4))
    return (words - (words >= 2**31).to(torch.int64) * 2**32).to(torch.int32).contiguous()


def pack_u4_mma(q):
    """q [R, C] ints in 0..15, C a multiple of 32 -> int32 words [R, 4 * C/32] in the mma order
    (docs/QUANT.md): value k of a row goes to word 4 (k // 32) + (k % 8) // 2 of the row, element
    i = (k & 1) + 2 ((k % 32) // 8), which sits in slot (i >> 1) + 4 (i & 1)."""
    R, C = q.shape
    assert C % 32 == 0, f"the mma order packs whole 32-value blocks; {C} columns"
    k = torch.arange(C, device=q.device)
    r = k % 32
    word = 4 * (k // 32) + (r % 8) // 2
    i = (r & 1) + 2 * (r // 8)
    shift = 4 * ((i >> 1) + 4 * (i & 1))
    words = torch.zeros(R, C // 8, dtype=torch.int64, device=q.device)
    words.index_add_(1, word, q.to(torch.int64) << shift)  # the 8 fields of a word never overlap
    return (words - (words >= 2**31).to(torch.int64) * 2**32).to(torch.int32).contiguous()


def torch_moe(x, wr, w13, w2, E, N, K):
    """The plain PyTorch MoE layer, f32 math on the bf16 values."""
    xf = x.float()
    probs = torch.softmax(xf @ wr.float().t(), dim=-1)
    w, ids = torch.topk(probs, K, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    out = torch.zeros(x.shape[0], x.shape[1], dtype=torch.float32, device=x.device)
    w13 = w13.view(E, 2 * N, -1)
    w2 = w2.view(E, x.shape[1], N)
    for e in range(E):
        tok, slot = torch.nonzero(ids == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        xe = xf[tok]
        g = xe @ w13[e, :N].float().t()
        u = xe @ w13[e, N:].float().t()
        h = (torch.nn.functional.silu(g) * u).to(torch.bfloat16).float()  # the layer keeps h in bf16
        out.index_add_(0, tok, (h @ w2[e].float().t()) * w[tok, slot, None])
    return out


def cuda_time(fn, iters):
    fn(); torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        fn()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / iters * 1e3  # us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", default="qwen3_bf16")
    ap.add_argument("--tokens", default="1,16,64,256,1024")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--combine", choices=["atomic", "reduce", "reduce_bf16"], help="force every entry's top-k combine (default: each entry's own)")
    args = ap.parse_args()
    model, weights = args.layer.split("_")
    m = MODELS[model]
    E, H, N, K = m["E"], m["H"], m["N"], m["K"]
    torch.manual_seed(0)
    dev = "cuda"
    t0 = time.time()
    ext = build(args.layer, args.combine)
    print(f"built {args.layer}{' (all ' + args.combine + ')' if args.combine else ''} in {time.time() - t0:.1f} s on {torch.cuda.get_device_name()}")
    wr = (torch.randn(E, H, device=dev) * 0.05).to(torch.bfloat16)
    if weights == "w4a16":
        # Both expert projections 4-bit, group 128; the reference uses the dequantized weights.
        # The layer's packing orders (src/moe/layer.ts W4_ORDERS): w13 interleaved, w2 mma.
        def quantized(rows, cols, pack):
            q = torch.randint(0, 16, (rows, cols), device=dev)
            s = (torch.rand(rows, (cols + 127) // 128, device=dev) * 0.02 / cols**0.5 * 8 + 0.001).to(torch.bfloat16)
            return pack(q), s, ((q - 8).float() * s.float().repeat_interleave(128, dim=1)[:, :cols]).to(torch.bfloat16)
        w13_arg, s13, w13 = quantized(E * 2 * N, H, pack_u4_interleaved)
        w2_arg, s2, w2 = quantized(E * H, N, pack_u4_mma)
    else:
        w13 = (torch.randn(E * 2 * N, H, device=dev) / H**0.5).to(torch.bfloat16)
        w2 = (torch.randn(E * H, N, device=dev) / N**0.5).to(torch.bfloat16)
        w13_arg, w2_arg = w13, w2
        s13 = s2 = torch.empty(0, dtype=torch.bfloat16, device=dev)
    print(f"{'T':>6} {'max_err':>10} {'rel_err':>10} {'tilemoe_us':>11} {'torch_us':>10}")
    worst = 0.0
    for T in [int(t) for t in args.tokens.split(",")]:
        x = torch.randn(T, H, device=dev).to(torch.bfloat16)
        out = torch.empty(T, H, dtype=torch.float32, device=dev)
        ws = torch.empty(max(ext.workspace_bytes(T), 1), dtype=torch.uint8, device=dev)
        run = lambda: ext.forward(x, wr, w13_arg, s13, w2_arg, s2, out, ws)
        run(); torch.cuda.synchronize()
        ref = torch_moe(x, wr, w13, w2, E, N, K)
        err = (out - ref).abs().max().item()
        rel = err / max(ref.abs().max().item(), 1e-30)
        worst = max(worst, rel)
        print(f"{T:>6} {err:>10.3e} {rel:>10.3e} {cuda_time(run, args.iters):>11.1f} "
              f"{cuda_time(lambda: torch_moe(x, wr, w13, w2, E, N, K), max(2, args.iters // 4)):>10.1f}")
    print("PASS" if worst < 2e-2 else "FAIL", f"(worst relative error {worst:.3e}, limit 2e-2)")
    return 0 if worst < 2e-2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
