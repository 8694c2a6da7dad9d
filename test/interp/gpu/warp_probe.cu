// Runs ldmatrix (x1/x2/x4, with and without .trans) and mma.sync m16n8k16 (bf16, f16) on
// the GPU with per-lane inputs that assume nothing about fragment layouts (raw registers,
// arbitrary row addresses), and prints inputs and outputs as JSON. test/interp/warp-gpu.test.ts
// replays the inputs through src/interp/warp.ts and must get the same outputs: the
// interpreter's reading of the PTX ISA, pinned by the hardware.
// Build and run: nvcc -arch=sm_80 -o warp_probe warp_probe.cu && ./warp_probe > warp-golden.json
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

static uint32_t lcg = 12345u;
static uint32_t next() { lcg = lcg * 1664525u + 1013904223u; return lcg >> 8; }

template <int NUM, bool TRANS>
__global__ void ldm(const uint16_t* in, const int* addr, uint16_t* out) {
  __shared__ __align__(16) uint16_t S[512];
  for (int i = threadIdx.x; i < 512; i += 32) S[i] = in[i];
  __syncthreads();
  uint32_t p = (uint32_t)__cvta_generic_to_shared(&S[addr[threadIdx.x]]);
  uint32_t r[4] = {0, 0, 0, 0};
  if (NUM == 1 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(p));
  if (NUM == 1 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(p));
  if (NUM == 2 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(p));
  if (NUM == 2 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(p));
  if (NUM == 4 && !TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(p));
  if (NUM == 4 && TRANS) asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(p));
  for (int j = 0; j < NUM; j++) {
    out[threadIdx.x * 8 + 2 * j] = r[j] & 0xffff;
    out[threadIdx.x * 8 + 2 * j + 1] = r[j] >> 16;
  }
}

template <bool BF16>
__global__ void mma(const uint16_t* a, const uint16_t* b, const float* c, float* d) {
  int l = threadIdx.x;
  uint32_t A[4], B[2];
  for (int i = 0; i < 4; i++) A[i] = a[l * 8 + 2 * i] | ((uint32_t)a[l * 8 + 2 * i + 1] << 16);
  for (int i = 0; i < 2; i++) B[i] = b[l * 4 + 2 * i] | ((uint32_t)b[l * 4 + 2 * i + 1] << 16);
  float C0 = c[l * 4], C1 = c[l * 4 + 1], C2 = c[l * 4 + 2], C3 = c[l * 4 + 3], D0, D1, D2, D3;
  if (BF16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(D0), "=f"(D1), "=f"(D2), "=f"(D3)
                 : "r"(A[0]), "r"(A[1]), "r"(A[2]), "r"(A[3]), "r"(B[0]), "r"(B[1]), "f"(C0), "f"(C1), "f"(C2), "f"(C3));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(D0), "=f"(D1), "=f"(D2), "=f"(D3)
                 : "r"(A[0]), "r"(A[1]), "r"(A[2]), "r"(A[3]), "r"(B[0]), "r"(B[1]), "f"(C0), "f"(C1), "f"(C2), "f"(C3));
  d[l * 4] = D0; d[l * 4 + 1] = D1; d[l * 4 + 2] = D2; d[l * 4 + 3] = D3;
}

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)

template <typename T> static void printArr(const char* name, const T* v, int n, bool last = false) {
  printf("\"%s\": [", name);
  for (int i = 0; i < n; i++) { if (sizeof(T) == 4 && (T)0.5 != 0) printf("%s%.9g", i ? "," : "", (double)v[i]); else printf("%s%d", i ? "," : "", (int)v[i]); }
  printf("]%s\n", last ? "" : ",");
}

// bf16 / f16 bit patterns of small values, made on the host without cuda_fp16 helpers.
static uint16_t bf16Bits(float x) { uint32_t u; memcpy(&u, &x, 4); return (uint16_t)(u >> 16); } // x exact in bf16
static uint16_t f16Bits(int v) { // integers -16..16 and k/8 fractions that are exact
  float x = v / 8.0f;
  if (x == 0) return 0;
  uint16_t s = x < 0 ? 0x8000 : 0; float a = x < 0 ? -x : x;
  int e = 0; while (a >= 2) { a /= 2; e++; } while (a < 1) { a *= 2; e--; }
  return s | (uint16_t)((e + 15) << 10) | (uint16_t)((a - 1) * 1024);
}

int main() {
  uint16_t *din, *dout; int* daddr;
  CK(cudaMalloc(&din, 512 * 2)); CK(cudaMalloc(&dout, 256 * 2)); CK(cudaMalloc(&daddr, 32 * 4));
  uint16_t smem[512]; for (int i = 0; i < 512; i++) smem[i] = (uint16_t)(i * 7 + 3);
  int perm[64]; for (int i = 0; i < 64; i++) perm[i] = i;
  for (int i = 63; i > 0; i--) { int j = next() % (i + 1); int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
  int addr[32]; for (int l = 0; l < 32; l++) addr[l] = perm[l] * 8;
  CK(cudaMemcpy(din, smem, 1024, cudaMemcpyHostToDevice)); CK(cudaMemcpy(daddr, addr, 128, cudaMemcpyHostToDevice));
  printf("{\n");
  printArr("smem", smem, 512); printArr("addr", addr, 32);
  uint16_t out[256];
#define LDM(N, T, NAME) CK(cudaMemset(dout, 0, 512)); ldm<N, T><<<1, 32>>>(din, daddr, dout); CK(cudaDeviceSynchronize()); \
  CK(cudaMemcpy(out, dout, 512, cudaMemcpyDeviceToHost)); printArr(NAME, out, 256);
  LDM(1, false, "x1") LDM(2, false, "x2") LDM(4, false, "x4") LDM(1, true, "x1t") LDM(2, true, "x2t") LDM(4, true, "x4t")

  uint16_t *da, *db; float *dc, *dd;
  CK(cudaMalloc(&da, 256 * 2)); CK(cudaMalloc(&db, 128 * 2)); CK(cudaMalloc(&dc, 128 * 4)); CK(cudaMalloc(&dd, 128 * 4));
  for (int t = 0; t < 2; t++) {
    bool bf = t == 0;
    int av[256], bv[128]; uint16_t a[256], b[128]; float c[128], d[128];
    // eighths in [-2, 2]: every product and partial sum is exact in f32, so the result is layout alone
    for (int i = 0; i < 256; i++) { av[i] = (int)(next() % 33) - 16; a[i] = bf ? bf16Bits(av[i] / 8.0f) : f16Bits(av[i]); }
    for (int i = 0; i < 128; i++) { bv[i] = (int)(next() % 33) - 16; b[i] = bf ? bf16Bits(bv[i] / 8.0f) : f16Bits(bv[i]); }
    for (int i = 0; i < 128; i++) c[i] = (float)((int)(next() % 201) - 100) / 4.0f;
    CK(cudaMemcpy(da, a, 512, cudaMemcpyHostToDevice)); CK(cudaMemcpy(db, b, 256, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dc, c, 512, cudaMemcpyHostToDevice));
    if (bf) mma<true><<<1, 32>>>(da, db, dc, dd); else mma<false><<<1, 32>>>(da, db, dc, dd);
    CK(cudaDeviceSynchronize()); CK(cudaMemcpy(d, dd, 512, cudaMemcpyDeviceToHost));
    printf("\"%s\": {\n", bf ? "mma_bf16" : "mma_f16");
    printArr("a_eighths", av, 256); printArr("b_eighths", bv, 128); printArr("c", c, 128); printArr("d", d, 128, true);
    printf("}%s\n", bf ? "," : "");
  }
  { // random bf16 operands and f32 accumulators: how close is "exact products, one f32 rounding"?
    uint16_t a[256], b[128]; float c[128], d[128];
    auto r11 = []() { return (float)((int)(next() % 2001) - 1000) / 1000.0f; };
    for (int i = 0; i < 256; i++) a[i] = bf16Bits(r11());
    for (int i = 0; i < 128; i++) b[i] = bf16Bits(r11());
    for (int i = 0; i < 128; i++) c[i] = r11() * 3.0f;
    CK(cudaMemcpy(da, a, 512, cudaMemcpyHostToDevice)); CK(cudaMemcpy(db, b, 256, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dc, c, 512, cudaMemcpyHostToDevice));
    mma<true><<<1, 32>>>(da, db, dc, dd);
    CK(cudaDeviceSynchronize()); CK(cudaMemcpy(d, dd, 512, cudaMemcpyDeviceToHost));
    printf(",\n\"mma_bf16_random\": {\n");
    printArr("a_bits", a, 256); printArr("b_bits", b, 128); printArr("c", c, 128); printArr("d", d, 128, true);
    printf("}\n");
  }
  printf("}\n");
  return 0;
}
