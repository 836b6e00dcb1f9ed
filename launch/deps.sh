# Sourced by tests/run.sh and launch/quickstart.sh: the Debian packages grpo
# builds against, installed only when one is missing.
GRPO_DEBIAN_PACKAGES=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libyaml-dev libopenblas-dev libcjson-dev libpcre2-dev libutf8proc-dev
)

grpo_install_deps() {
  local missing=()
  for p in "${GRPO_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing missing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
