# Set up (if needed) and open AFPS Inspector on its built-in demo project, on Windows.
#   powershell -ExecutionPolicy Bypass -File scripts\run-demo.ps1
& (Join-Path $PSScriptRoot "dev.ps1") demo @args
exit $LASTEXITCODE
