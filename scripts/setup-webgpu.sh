#!/usr/bin/env bash
# Sets up a CPU WebGPU adapter for Dawn (the `webgpu` npm package): Mesa 25 lavapipe from
# Debian's bookworm-backports, unpacked into .webgpu/ in the project. Debian 12's own
# lavapipe (Mesa 22) is too old for Dawn, and the system's apt configuration is left
# untouched: backports are read through a private sources file and private apt state.
# Idempotent: a second run with everything in place only prints the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DEST="$ROOT/.webgpu"
ROOTFS="$DEST/root"
ICD="$DEST/lvp_icd.json"
LIBDIR="$ROOTFS/usr/lib/x86_64-linux-gnu"

say() { echo "setup-webgpu: $*" >&2; }

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  say "only Linux x86_64 is scripted; on other systems use the platform's own WebGPU adapter"
  exit 1
fi

# The Vulkan loader itself comes from the system (Dawn dlopens libvulkan.so.1).
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  say "installing libvulkan1 (system package)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libvulkan1 >/dev/null
fi

if [ ! -f "$ICD" ] || [ ! -f "$(sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' "$ICD")" ]; then
  mkdir -p "$DEST/apt/lists/partial" "$DEST/apt/cache/archives/partial" "$DEST/debs" "$ROOTFS"
  # Same mirror as the machine's first Debian source, suite bookworm-backports.
  URI=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    URI="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  elif [ -f /etc/apt/sources.list ]; then
    URI="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)"
  fi
  URI="${URI:-http://deb.debian.org/debian}"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $URI bookworm-backports main" >"$DEST/apt/sources.list"
  APT=(-o Dir::Etc::sourcelist="$DEST/apt/sources.list" -o Dir::Etc::sourceparts=-
       -o Dir::State::Lists="$DEST/apt/lists" -o Dir::Cache="$DEST/apt/cache"
       -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  say "fetching the bookworm-backports index from $URI"
  apt-get "${APT[@]}" update -qq
  say "downloading mesa-vulkan-drivers libdrm2 libdrm-amdgpu1"
  (cd "$DEST/debs" && rm -f ./*.deb && apt-get "${APT[@]}" download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 -qq)
  for deb in "$DEST"/debs/*.deb; do dpkg -x "$deb" "$ROOTFS"; done
  SRC_ICD="$(ls "$ROOTFS"/usr/share/vulkan/icd.d/lvp_icd*.json | head -1)"
  LIB="$(ls "$LIBDIR"/libvulkan_lvp.so)"
  # The packaged ICD names the library by bare file name; make it absolute so the system
  # loader finds our copy and not a system one.
  sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$LIB\"|" "$SRC_ICD" >"$ICD"
  rm -rf "$DEST/apt/cache/archives"
  say "lavapipe unpacked: $(basename "$(ls "$DEST"/debs/mesa-vulkan-drivers_*.deb)")"
fi

echo "export VK_ICD_FILENAMES=$ICD"
echo "export LD_LIBRARY_PATH=$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
