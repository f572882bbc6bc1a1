# Source this (bash/sh) before running the WebGPU tests: `. scripts/webgpu-env.sh`
# When the machine has no GPU a Vulkan driver could drive (no /dev/nvidia0 with an NVIDIA ICD, no /dev/dri render
# node), it points the Vulkan loader at Mesa's lavapipe (software Vulkan; Mesa 25 from bookworm-backports, see
# scripts/setup.sh) so onnxruntime-node's WebGPU EP finds an adapter. It leaves an explicit VK_ICD_FILENAMES or
# VK_DRIVER_FILES alone, and does nothing when lavapipe is not installed (the WebGPU tests then skip, or fail
# under ELASTIC_VLM_REQUIRE_WEBGPU=1). Run directly (not sourced), it prints what it would export.
_evlm_lvp=""
for _evlm_dir in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  if [ -z "$_evlm_lvp" ] && [ -f "$_evlm_dir/lvp_icd.json" ]; then _evlm_lvp="$_evlm_dir/lvp_icd.json"; fi
done
_evlm_hw=""
if [ -e /dev/nvidia0 ]; then
  for _evlm_dir in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    if ls "$_evlm_dir"/nvidia*.json >/dev/null 2>&1; then _evlm_hw="nvidia"; fi
  done
fi
for _evlm_node in /dev/dri/renderD*; do
  if [ -e "$_evlm_node" ]; then _evlm_hw="${_evlm_hw:+$_evlm_hw, }$_evlm_node"; fi
done
if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  _evlm_msg="keeping VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
elif [ -n "$_evlm_hw" ]; then
  _evlm_msg="a hardware Vulkan driver may be present ($_evlm_hw): leaving the Vulkan loader's choice"
elif [ -n "$_evlm_lvp" ]; then
  VK_ICD_FILENAMES="$_evlm_lvp"
  export VK_ICD_FILENAMES
  _evlm_msg="no GPU: VK_ICD_FILENAMES=$_evlm_lvp (lavapipe, software Vulkan)"
else
  _evlm_msg="no GPU and no lavapipe (lvp_icd.json): WebGPU has no adapter here"
fi
echo "[webgpu-env] $_evlm_msg" >&2
case "${0##*/}" in
  webgpu-env.sh) [ -n "${VK_ICD_FILENAMES:-}" ] && echo "export VK_ICD_FILENAMES=$VK_ICD_FILENAMES" ;;
esac
unset _evlm_lvp _evlm_hw _evlm_dir _evlm_node _evlm_msg
