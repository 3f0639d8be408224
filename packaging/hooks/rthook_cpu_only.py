"""Runtime hook of the --cpu-only bundle: hide every GPU from torch.

That bundle leaves out the CUDA libraries that torch loads only when it uses a GPU (cuDNN's
engines, cuSOLVER, ...). Hiding the GPUs makes ``torch.cuda.is_available()`` False, so the app's
"auto" device is the CPU, instead of a GPU run that would fail on the first convolution.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["AFPS_BUNDLE_CPU_ONLY"] = "1"
