// A stand-in for a generated MoE layer library (moe_layer_<name>.cu built with -shared), for
// the runner's layer cases on the fake driver, whose device memory is host memory:
//   moe_layer_fake_buffers({x bf16 [T, 4], out f32 [T, 4]}, 2, T, ws, bytes, stream)
//   out = 2 * x; workspace: i32 [T] with t % 3 (a "routing" to save); 1 ms on the fake clock.
// Errors: 3 for a wrong buffer count, 2 for a short workspace, 1 for T > 1000.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../../runtime/cuda/numeric.h"

extern "C" void fakecuda_advance(double ms);

extern "C" __attribute__((visibility("default"))) size_t moe_layer_fake_workspace_bytes(int64_t T) { return T < 0 ? 0 : size_t(T) * 4; }

extern "C" __attribute__((visibility("default"))) int moe_layer_fake_buffers(void* const* b, int count, int64_t T, void* ws, size_t wsBytes, void*) {
  if (count != 2) return 3;
  if (T > 1000) return 1;
  if (wsBytes < moe_layer_fake_workspace_bytes(T)) return 2;
  const uint8_t* x = static_cast<const uint8_t*>(b[0]);
  float* out = static_cast<float*>(b[1]);
  for (int64_t i = 0; i < T * 4; i++) out[i] = 2 * static_cast<float>(num::load(num::DType::BF16, x + 2 * i));
  for (int64_t t = 0; t < T; t++) static_cast<int32_t*>(ws)[t] = static_cast<int32_t>(t % 3);
  fakecuda_advance(1.0);
  return 0;
}

extern "C" __attribute__((visibility("default"))) const char* moe_layer_fake_error_string(int code) {
  return code == 1 ? "fake layer: T > 1000" : code == 2 ? "fake layer: workspace too small" : code == 3 ? "fake layer: wrong buffer count" : "fake layer: ?";
}
