// What kernel files and other projects import as `from "tilemoe/quant"`: the packed
// formats, the host-side packer and the exact dequantization (docs/QUANT.md).
export * from "./format.ts";
export * from "./pack.ts";
