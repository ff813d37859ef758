#!/usr/bin/env bash
# Debian packages the tests use: chromium (browser tests; Playwright's own download does not
# work offline), tesseract (OCR of scanned pages), LibreOffice writer (ODT/DOCX -> PDF export) and
# calc (the AZA cost plan XLSX is recalculated headless),
# strace and iproute2 (egress audit, network namespace). Installed only when missing.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-deu)
command -v soffice >/dev/null || need+=(libreoffice-writer-nogui)
dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 || dpkg -s libreoffice-calc >/dev/null 2>&1 || need+=(libreoffice-calc-nogui)
command -v strace >/dev/null || need+=(strace)
command -v ip >/dev/null || need+=(iproute2)
command -v pdftoppm >/dev/null || need+=(poppler-utils)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "Fehlende Debian-Pakete / missing Debian packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
  exit 0   # tests that need them skip with a reason
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
