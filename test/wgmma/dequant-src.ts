// The tile-level kernel of the register-A dequant wgmma tests (test/wgmma/dequant-wgmma.test.ts):
// the fused dequant-gemm tests' kernel (test/passes/fused/dequant-gemm-src.ts) at wgmma tile
// sizes, in a 3-stage pipeline (so that the wgmma pipeline keeps a group in flight).
import { dequantGemmSrc } from "../passes/fused/dequant-gemm-src.ts";

export interface RsShape { BM: number; BN: number; BK: number; threads: number }

export const rsSrc = (fmt: string, per: number, s: RsShape): string => dequantGemmSrc(fmt, per, "", { ...s, stages: 3, name: "rsq" });
