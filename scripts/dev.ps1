# Windows (PowerShell) front of scripts/dev.py: set up, test, or open the demo.
#   powershell -ExecutionPolicy Bypass -File scripts\dev.ps1 bootstrap|test|demo [ARGS...]
# The Python that makes .venv: $env:PYTHON if set, else the py launcher (py -3), else python.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
if ($env:PYTHON) { $python = @($env:PYTHON) }
elseif (Get-Command py -ErrorAction SilentlyContinue) { $python = @("py", "-3") }
else { $python = @("python") }
$exe = $python[0]
$pre = @($python | Select-Object -Skip 1)
& $exe @pre scripts\dev.py @args
exit $LASTEXITCODE
