#!/bin/sh
# grpo convert hf2h5 / h52hf on fixture models: the files come back bit for bit,
# and bad usage or bad input fails with a message. Usage: convert_cli.sh GRPO_BINARY
set -u
grpo=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/grpo_convert_XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { # description, then a command that must succeed
  desc=$1; shift
  if "$@"; then pass=$((pass + 1)); else echo "FAILED: $desc"; fail=$((fail + 1)); fi
}

for m in tests/fixtures/models/qwen3 tests/safetensors/data/sharded_bf16; do
  name=$(basename "$m")
  check "$name hf2h5" "$grpo" convert hf2h5 "$m" "$tmp/$name.h5"
  check "$name h52hf" "$grpo" convert h52hf "$tmp/$name.h5" "$tmp/$name"
  for f in "$m"/model*.safetensors "$m"/config.json; do
    check "$name $(basename "$f") identical" cmp -s "$f" "$tmp/$name/$(basename "$f")"
  done
done
check "tokenizer file restored" cmp -s tests/safetensors/data/sharded_bf16/tokenizer_config.json \
  "$tmp/sharded_bf16/tokenizer_config.json"
check "h52hf --dtype bf16" "$grpo" convert h52hf --dtype bf16 "$tmp/qwen3.h5" "$tmp/q3bf16"
check "bf16 export is half the size" test "$(wc -c < "$tmp/q3bf16/model.safetensors")" -lt 300000
check "torch_dtype bfloat16" grep -q "\"torch_dtype\":[[:space:]]*\"bfloat16\"" "$tmp/q3bf16/config.json"

"$grpo" convert hf2h5 tests/fixtures/models/nope "$tmp/x.h5" 2> "$tmp/err"; rc=$?
check "missing dir exits 1" test "$rc" -eq 1
check "missing dir is named" grep -q "tests/fixtures/models/nope" "$tmp/err"
"$grpo" convert sideways a b 2> /dev/null; rc=$?
check "bad mode exits 2" test "$rc" -eq 2
"$grpo" convert h52hf --dtype f8 a b 2> /dev/null; rc=$?
check "bad dtype exits 2" test "$rc" -eq 2
"$grpo" convert hf2h5 onlyone 2> /dev/null; rc=$?
check "missing argument exits 2" test "$rc" -eq 2
check "--help" sh -c "'$grpo' convert --help | grep -q hf2h5"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
