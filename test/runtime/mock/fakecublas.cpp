// A stand-in libcublas.so.13 for the runner's tests: cublasGemmEx on host memory with the
// column-major semantics of the real one (so the runner's row-major mapping is checked).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../../runtime/cuda/numeric.h"

extern "C" void fakecuda_advance(double ms);

namespace {
int handleToken;
num::DType typeOf(int t) { return t == 14 ? num::DType::BF16 : t == 2 ? num::DType::F16 : num::DType::F32; }
}  // namespace

#define API extern "C" __attribute__((visibility("default")))

API int cublasCreate_v2(void** h) { *h = &handleToken; return 0; }
API int cublasDestroy_v2(void*) { return 0; }
API int cublasSetStream_v2(void*, void*) { return 0; }
API const char* cublasGetStatusName(int s) { return s == 7 ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_?"; }

// C[m,n] (ld ldc) = op(A)[m,k] * op(B)[k,n], all column-major.
API int cublasGemmEx(void*, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype,
                     int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc,
                     int computeType, int) {
  if (computeType != 68 || m <= 0 || n <= 0 || k <= 0) return 7;
  if (lda < (transa ? k : m) || ldb < (transb ? n : k) || ldc < m) return 7;
  float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  num::DType ta = typeOf(Atype), tb = typeOf(Btype), tc = typeOf(Ctype);
  int sa = num::info(ta).bytes, sb = num::info(tb).bytes, sc = num::info(tc).bytes;
  auto a = static_cast<const uint8_t*>(A), b = static_cast<const uint8_t*>(B);
  auto c = static_cast<uint8_t*>(C);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float acc = 0;
      for (int p = 0; p < k; p++) {
        size_t ia = transa ? size_t(i) * lda + p : size_t(p) * lda + i;
        size_t ib = transb ? size_t(p) * ldb + j : size_t(j) * ldb + p;
        acc += float(num::load(ta, a + ia * sa)) * float(num::load(tb, b + ib * sb));
      }
      uint8_t* dst = c + (size_t(j) * ldc + i) * sc;
      float old = be != 0 ? float(num::load(tc, dst)) : 0.f;
      num::store(tc, dst, al * acc + be * old);
    }
  fakecuda_advance(0.5e-6 * m * n * k);
  return 0;
}
