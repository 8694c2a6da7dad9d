// IR names become C identifiers. They are kept as written unless they would collide with a
// C++ keyword, a CUDA builtin or a name the emitter itself declares; then a trailing `_` is added.
const RESERVED = new Set([
  "alignas", "alignof", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
  "constexpr", "const_cast", "continue", "decltype", "default", "delete", "do", "double",
  "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend",
  "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "nullptr",
  "operator", "private", "protected", "public", "register", "reinterpret_cast", "return", "short",
  "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template",
  "this", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using",
  "virtual", "void", "volatile", "while", "and", "or", "not", "xor",
  // CUDA builtins and names the generated code declares.
  "threadIdx", "blockIdx", "blockDim", "gridDim", "warpSize", "smem", "stream",
  "min", "max", "abs", "exp", "log", "sqrt", "floor", "ceil", "round", "pow", "fma",
  "sin", "cos", "tanh", "erf", "uint4", "uint2", "int64_t", "uint32_t",
]);

export function cName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`IR name ${JSON.stringify(name)} is not an identifier`);
  // Names starting with tm_ are the emitter's own temporaries.
  if (RESERVED.has(name) || name.startsWith("tm_") || name.startsWith("__")) return `${name}_`;
  return name;
}
