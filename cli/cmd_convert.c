#include <stdio.h>
#include <string.h>

#include "checkpoints/hf_io.h"
#include "cli/commands.h"

static const char USAGE[] =
    "usage: grpo convert hf2h5 HF_DIR OUT.h5\n"
    "       grpo convert h52hf [--dtype keep|bf16|f32] CKPT.h5 OUT_DIR\n"
    "\n"
    "Moves weights between Hugging Face safetensors (+ config.json and\n"
    "tokenizer files) and grpo HDF5 checkpoints.\n"
    "\n"
    "hf2h5 reads config.json, model.safetensors or model.safetensors.index.json\n"
    "+ shards (F32, BF16, F16), and the tokenizer/generation files, and stores\n"
    "all of them in OUT.h5 (/model tensors; /meta config, shard layout, files).\n"
    "h52hf writes config.json, the safetensors and those files into OUT_DIR, so\n"
    "transformers and vLLM can load it. With --dtype keep (default) each tensor\n"
    "keeps its stored dtype and an hf2h5 file is reproduced bit for bit; bf16 or\n"
    "f32 converts every tensor (round to nearest even) and sets torch_dtype.\n";

int cmd_convert(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc < 2) {
    fputs(USAGE, stderr);
    return 2;
  }
  const char *mode = argv[1];
  int dtype = CKPT_HF_KEEP_DTYPE;
  const char *pos[2] = {NULL, NULL};
  int npos = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc && strcmp(mode, "h52hf") == 0) {
      const char *d = argv[++i];
      if (strcmp(d, "keep") == 0)
        dtype = CKPT_HF_KEEP_DTYPE;
      else if (strcmp(d, "bf16") == 0)
        dtype = CKPT_ST_BF16;
      else if (strcmp(d, "f32") == 0)
        dtype = CKPT_ST_F32;
      else {
        fprintf(stderr, "grpo convert: --dtype must be keep, bf16 or f32 (got \"%s\")\n", d);
        return 2;
      }
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      fprintf(stderr, "grpo convert: unknown option %s\n%s", argv[i], USAGE);
      return 2;
    } else if (npos < 2) {
      pos[npos++] = argv[i];
    } else {
      fprintf(stderr, "grpo convert: too many arguments\n%s", USAGE);
      return 2;
    }
  }
  if (npos != 2 || (strcmp(mode, "hf2h5") != 0 && strcmp(mode, "h52hf") != 0)) {
    fputs(USAGE, stderr);
    return 2;
  }
  grpo_error err;
  grpo_error_clear(&err);
  int rc = strcmp(mode, "hf2h5") == 0 ? ckpt_hf_to_h5(pos[0], pos[1], &err)
                                      : ckpt_h5_to_hf(pos[0], pos[1], dtype, &err);
  if (rc) {
    fprintf(stderr, "grpo convert %s: %s\n", mode, err.msg);
    return 1;
  }
  printf("grpo convert %s: wrote %s\n", mode, pos[1]);
  return 0;
}
