# Sourced by the scripts/device/*.sh runners on the lent GPU machine: the repository (ROOT), the unpacked carry
# (X: node, nm/, app/; CARRY overrides where it is) and its Node (N), with its modules on NODE_PATH.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$(cd "${CARRY:-$ROOT/.devcarry/x}" && pwd)
export NODE_PATH=$X/nm ORT_DISABLE_TELEMETRY=1
N=$X/node
