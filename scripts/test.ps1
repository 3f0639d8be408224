# Set up (if needed) and run the whole test suite headless on Windows; arguments go to pytest.
#   powershell -ExecutionPolicy Bypass -File scripts\test.ps1 [-q] [tests\test_x.py ...]
& (Join-Path $PSScriptRoot "dev.ps1") test @args
exit $LASTEXITCODE
