"""What machine a benchmark ran on: the CPU as `lscpu` names it, with the SIMD flags that decide which
kernels can run (AVX2/FMA, AVX-512, BF16, VNNI, AMX), and how busy it was. Standard library only."""

import os
import subprocess

# (cpuinfo flag, how the tables name it); AVX-512 F/BW/VL are folded into one name when all present.
FLAGS = [
    ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"),
    ("avx512vl", "AVX-512VL"), ("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "AVX512-VNNI"),
    ("avx_vnni", "AVX-VNNI"), ("avx512_fp16", "AVX512-FP16"), ("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8"),
]


def cpu_info():
    """The CPU as a dict: ``model_name``, ``family``, ``model``, ``stepping``, ``hypervisor``, ``cpus``,
    ``flags`` (those of FLAGS present) and ``summary`` (one line for tables)."""
    fields = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = set(fields.get("Flags", "").split())
    if not flags:  # no lscpu: /proc/cpuinfo has the same flags
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "flags":
                        flags = set(value.split())
                    elif key.strip() == "model name":
                        fields.setdefault("Model name", value.strip())
                    if flags and "Model name" in fields:
                        break
        except OSError:
            pass
    present = [name for flag, name in FLAGS if flag in flags]
    info = {
        "model_name": fields.get("Model name", "unknown"),
        "family": fields.get("CPU family"), "model": fields.get("Model"), "stepping": fields.get("Stepping"),
        "hypervisor": fields.get("Hypervisor vendor"), "cpus": os.cpu_count(), "flags": present,
    }
    info["summary"] = summary(info)
    return info


def summary(info):
    """One line naming the CPU, e.g. ``AMD EPYC (family 25 model 17, KVM, 2 CPUs; AVX2, FMA, AVX-512F/BW/VL,
    AVX512-BF16, AVX512-VNNI)``."""
    flags = list(info["flags"])
    if all(f in flags for f in ("AVX-512F", "AVX-512BW", "AVX-512VL")):
        i = flags.index("AVX-512F")
        flags = [f for f in flags if f not in ("AVX-512F", "AVX-512BW", "AVX-512VL")]
        flags.insert(i, "AVX-512F/BW/VL")
    where = []
    if info.get("family"):
        where.append(f"family {info['family']} model {info['model']}")
    if info.get("hypervisor"):
        where.append(info["hypervisor"])
    if info.get("cpus"):
        where.append(f"{info['cpus']} CPUs")
    simd = ", ".join(flags) if flags else "no AVX2"
    return f"{info['model_name']} ({', '.join(where)}; {simd})" if where else f"{info['model_name']} ({simd})"


def load():
    """The 1, 5 and 15-minute load averages (what `uptime` prints)."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None
