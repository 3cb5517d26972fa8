// llama-bench's tg in 40 lines, for scripts/bench-decode.sh: decode N tokens one per
// llama_decode (no sampling) with llama.cpp's C API, and print tokens/s. Linked against
// the llama.cpp that cargo built for the engine, it separates the engine's own loop
// from its llama.cpp build.
// Usage: tg-loop MODEL [N=128] [THREADS=2] [FLASH_ATTN=0] [EXTRA_BUFFERS=1]
#include "llama.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tg-loop MODEL [N] [THREADS] [FLASH_ATTN] [EXTRA_BUFFERS]\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 128;
  int threads = argc > 3 ? atoi(argv[3]) : 2;
  bool fa = argc > 4 && atoi(argv[4]) != 0;
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
  llama_model_params mp = llama_model_default_params();
  if (argc > 5) mp.use_extra_bufts = atoi(argv[5]) != 0;
  llama_model *m = llama_model_load_from_file(argv[1], mp);
  if (!m) return 1;
  // The engine's shape for one slot: its own KV stream, batch 512, the same threads.
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = threads;
  cp.flash_attn_type = fa ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.kv_unified = false;
  llama_context *ctx = llama_init_from_model(m, cp);
  if (!ctx) return 1;
  llama_token t = 5;
  for (int pass = 0; pass < 2; pass++) {  // a warm-up of 8 tokens, then the measure
    llama_memory_clear(llama_get_memory(ctx), true);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < (pass ? n : 8); i++) {
      llama_batch b = llama_batch_get_one(&t, 1);
      if (llama_decode(ctx, b)) return 1;
      llama_synchronize(ctx);
      t = 3 + (i * 7) % 250;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pass) printf("%.2f\n", n / s);
  }
  llama_free(ctx);
  llama_model_free(m);
  return 0;
}
