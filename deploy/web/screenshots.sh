#!/usr/bin/env bash
# Photographs the web pages again into docs/screenshots/: the browser tests
# (services/web/tests/browser.rs) in headless Chromium against the real
# services, with long, real-length content; every main page at a phone's
# width (375 px) and a desktop's (1280 px) in docs/screenshots/pages/, and the
# pages the README shows. Takes two to three minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/ensure-services.sh
CARELINE_UPDATE_SCREENSHOTS=1 cargo test --workspace --locked --test browser
echo "docs/screenshots/ holds the pages as they look now"
