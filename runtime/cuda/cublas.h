// cuBLAS, loaded with dlopen, for the GEMM baseline. The few declarations are our own
// (cublas_api.h need not be installed where the runner is built). cuBLAS runs on the
// current context, which the runner has set to the device's primary context.
#pragma once
#include <cuda.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace blas {

// Values from the cuBLAS and CUDA library-types documentation.
enum : int { OP_N = 0, OP_T = 1 };
enum : int { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum : int { COMPUTE_32F = 68 };
enum : int { GEMM_DEFAULT = -1 };

using Handle = void*;
struct Api {
  void* lib = nullptr;
  std::string path;
  int (*create)(Handle*);
  int (*destroy)(Handle);
  int (*setStream)(Handle, CUstream);
  int (*gemmEx)(Handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype,
                int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc,
                int computeType, int algo);
  const char* (*statusName)(int);
};

inline std::vector<std::string> candidates() {
  std::vector<std::string> c;
  for (const char* so : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) c.push_back(so);
  // The toolkit's lib64 is often not on the loader path of a fresh machine.
  for (const char* env : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* h = std::getenv(env);
    if (h) for (const char* so : {"libcublas.so.13", "libcublas.so.12"}) c.push_back(std::string(h) + "/lib64/" + so);
  }
  for (const char* so : {"libcublas.so.13", "libcublas.so.12"}) c.push_back(std::string("/usr/local/cuda/lib64/") + so);
  return c;
}

// Returns "" on success, or what went wrong (the list of paths tried).
inline std::string load(Api& a) {
  std::string tried;
  for (auto& p : candidates()) {
    a.lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (a.lib) { a.path = p; break; }
    if (!tried.empty()) tried += ", ";
    tried += p;
  }
  if (!a.lib) return "cuBLAS not found (tried " + tried + ")";
  a.create = reinterpret_cast<decltype(a.create)>(dlsym(a.lib, "cublasCreate_v2"));
  a.destroy = reinterpret_cast<decltype(a.destroy)>(dlsym(a.lib, "cublasDestroy_v2"));
  a.setStream = reinterpret_cast<decltype(a.setStream)>(dlsym(a.lib, "cublasSetStream_v2"));
  a.gemmEx = reinterpret_cast<decltype(a.gemmEx)>(dlsym(a.lib, "cublasGemmEx"));
  a.statusName = reinterpret_cast<decltype(a.statusName)>(dlsym(a.lib, "cublasGetStatusName"));
  if (!a.create || !a.destroy || !a.setStream || !a.gemmEx) return a.path + " lacks cublasCreate_v2/cublasGemmEx";
  return "";
}

inline std::string statusName(const Api& a, int s) {
  if (a.statusName) {
    const char* n = a.statusName(s);
    if (n) return n;
  }
  return "CUBLAS_STATUS " + std::to_string(s);
}

}  // namespace blas
