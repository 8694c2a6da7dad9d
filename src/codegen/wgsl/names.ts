// IR names become WGSL identifiers. They are kept as written unless they would collide with
// a WGSL keyword, reserved word, type or builtin the generated code calls; then a trailing
// `_` is added. Names the emitter itself declares all start with `_`, so an IR name that
// starts with `_` gets a `v` prefix (WGSL also forbids a leading `__`).
const RESERVED = new Set((
  // keywords
  "alias break case const const_assert continue continuing default diagnostic discard else enable " +
  "false fn for if let loop override requires return struct switch true var while " +
  // reserved words
  "NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await become " +
  "binding_array cast catch class co_await co_return co_yield coherent column_major common compile " +
  "compile_fragment concept const_cast consteval constexpr constinit crate debugger decltype delete " +
  "demote demote_to_helper do dynamic_cast enum explicit export extends extern external fallthrough " +
  "filter final finally friend from fxgroup get goto groupshared highp impl implements import inline " +
  "instanceof interface layout lowp macro macro_rules match mediump meta mod module move mut mutable " +
  "namespace new nil noexcept noinline nointerpolation noperspective null nullptr of operator package " +
  "packoffset partition pass patch pixelfragment precise precision premerge priv protected pub public " +
  "readonly ref regardless register reinterpret_cast require resource restrict self set shared sizeof " +
  "smooth snorm static static_assert static_cast std subroutine super target template this " +
  "thread_local throw trait try type typedef typeid typename typeof union unless unorm unsafe unsized " +
  "use using varying virtual volatile wgsl where with writeonly yield " +
  // types
  "bool i32 u32 f32 f16 array atomic ptr vec2 vec3 vec4 vec2f vec2u vec2i vec4f vec4u mat2x2 " +
  "sampler texture_2d " +
  // builtins the emitter calls, and the entry point
  "select min max abs exp exp2 log log2 sqrt inverseSqrt tanh sin cos floor ceil round pow fma " +
  "bitcast extractBits insertBits frexp ldexp sign atomicLoad atomicAnd atomicOr atomicStore " +
  "workgroupBarrier pack2x16float unpack2x16float main"
).split(/\s+/));

export function wgslName(name: string): string {
  if (name.startsWith("_")) return `v${name}`;
  return RESERVED.has(name) ? `${name}_` : name;
}
