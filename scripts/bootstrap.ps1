# Set up AFPS Inspector on Windows: .venv with the app and its dev tools (idempotent).
#   powershell -ExecutionPolicy Bypass -File scripts\bootstrap.ps1
& (Join-Path $PSScriptRoot "dev.ps1") bootstrap @args
exit $LASTEXITCODE
