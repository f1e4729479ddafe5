#!/usr/bin/env bash
# Re-records image.tar with BuildKit's buildctl (a buildkitd must run: hack/buildkit.sh build && hack/buildkit.sh start).
set -euo pipefail
cd "$(dirname "$0")"
eval "$(../../../../hack/buildkit.sh env)"
BUILDKIT_HOST=$BUILDKIT_HOST "$BUILDCTL" build --frontend dockerfile.v0 --local context=. --local dockerfile=. \
	--output type=oci,dest=image.tar,name=bk/fixture:latest
