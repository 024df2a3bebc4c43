"""A throw-away qemu guest that runs one command on this machine's own filesystem, with real NUMA tiers.

The guest boots Debian's stock kernel (/boot/vmlinuz-*: Debian's own release by default, another one -- e.g. the
6.12 backport, which has DAMON -- by `release` or $PAGETIDE_GUEST_KERNEL; kernel()) under TCG (this machine's
/dev/kvm runs only kernels built for it: /work/shared/ECOSYSTEM.md). No disk image: a busybox initramfs, made
here per run, loads the virtio and 9p modules, mounts the host's `/` read-only over 9p, a tmpfs on /tmp, proc, sysfs and devtmpfs,
this checkout read-only at its own path (a tmpfs would hide it under /tmp), and a writable 9p share at the run
directory's own path, then runs `run.sh` from there chrooted into
the host's filesystem, its output in `guest.log`, and powers off. The command sees the same paths as here
(the project, its venv, its Python), and writes what it finds into the run directory.

Memory (`layout`): two NUMA nodes of `node_mib` each, node 0 with both CPUs and node 1 CPU-less -- plain RAM in
one memory tier (`numa`), or an emulated NVDIMM that the guest onlines through dax kmem into a lower tier
(`nvdimm`). Under TCG no node is slower than another: placement is real, speed is not.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/bin/busybox")
# the modules the initramfs needs (their dependencies from modules.dep come first): virtio's PCI transport, 9p
MODULES = ("virtio_pci", "9pnet_virtio", "9p")
P9 = "trans=virtio,version=9p2000.L,msize=512000"
# this checkout (and a venv inside it), shared read-only at its own path: the guest's tmpfs on /tmp and /run
# would hide a checkout there (CI's clean clone may be one)
CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass
class GuestRun:
    returncode: int            # of run.sh inside the guest (-1: it never reported one)
    log: str                   # run.sh's output
    console: str               # the guest's serial console
    seconds: float             # qemu start to exit
    directory: Path            # the run directory (results the command wrote)


KERNEL_ENV = "PAGETIDE_GUEST_KERNEL"    # a kernel release to boot instead of the default (e.g. 6.12.118+deb12-amd64)


def _version(image: Path) -> tuple:
    """A sort key for an image's release: its numbers as numbers (6.1 < 6.12), words after them."""
    return tuple((0, int(x), "") if x.isdigit() else (1, 0, x)
                 for x in re.split(r"[.+-]", image.name.removeprefix("vmlinuz-")))


def kernel(release: str | None = None, boot: Path = Path("/boot")) -> Path | None:
    """The kernel image to boot, or None: /boot/vmlinuz-RELEASE for `release` (default: $PAGETIDE_GUEST_KERNEL);
    without one, the newest of Debian's own release (what `linux-image-amd64` installs and .ci/run boots), a
    backport (a release with +debNN, e.g. bookworm's 6.12) only where no other kernel is installed."""
    release = release or os.environ.get(KERNEL_ENV) or None
    if release is not None:
        image = boot / f"vmlinuz-{release}"
        return image if image.is_file() else None
    images = sorted(boot.glob("vmlinuz-*"), key=_version)
    stable = [i for i in images if not re.search(r"\+deb\d+", i.name)]
    return (stable or images or [None])[-1]


def damos_release(boot: Path = Path("/boot")) -> str | None:
    """The newest installed kernel release with DAMOS migrate actions (6.11+ with CONFIG_DAMON_SYSFS and
    CONFIG_DAMON_PADDR in its /boot/config-RELEASE), or None."""
    for image in sorted(boot.glob("vmlinuz-*"), key=_version, reverse=True):
        release = image.name.removeprefix("vmlinuz-")
        config = boot / f"config-{release}"
        text = config.read_text() if config.is_file() else ""
        if [v[1] for v in _version(image)[:2]] >= [6, 11] and all(f"\nCONFIG_DAMON_{k}=y" in text for k in ("SYSFS", "PADDR")):
            return release
    return None


def missing(release: str | None = None) -> str:
    """Why a guest cannot boot here with kernel `release` (default: kernel()'s choice); "" if it can."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not installed (apt-get install qemu-system-x86)"
    if shutil.which("cpio") is None:
        return "cpio not installed (apt-get install cpio)"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} not installed (apt-get install busybox-static)"
    image = kernel(release)
    if image is None:
        wanted = release or os.environ.get(KERNEL_ENV)
        return (f"no kernel image /boot/vmlinuz-{wanted} (apt-get install linux-image-{wanted})" if wanted
                else "no kernel image in /boot (apt-get install linux-image-amd64)")
    if not module_dir(image).is_dir():
        return f"no modules for {image.name} in /lib/modules"
    try:
        _modules(image)
    except (FileNotFoundError, KeyError) as e:
        return f"the initramfs's modules for {image.name}: {e}"
    return ""


def module_dir(image: Path) -> Path:
    return Path("/lib/modules") / image.name.removeprefix("vmlinuz-")


def module_name(path: str | Path) -> str:
    """A module file's name without .ko or .ko.xz (6.12's modules are xz-compressed, 6.1's are not)."""
    return Path(path).name.removesuffix(".xz").removesuffix(".ko")


def _modules(image: Path) -> list[Path]:
    """MODULES and what they need, in load order (modules.dep lists a module's dependencies, deepest last);
    those built into the kernel (modules.builtin: 6.12 builds in virtio_pci) are left out."""
    root = module_dir(image)
    deps = {}
    for line in (root / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {module_name(m): m for m in deps}
    builtin_file = root / "modules.builtin"
    builtin = {module_name(m) for m in builtin_file.read_text().split()} if builtin_file.exists() else set()
    order: list[str] = []

    def need(mod: str) -> None:
        for d in reversed(deps[mod]):
            need(d)
        if mod not in order:
            order.append(mod)
    for m in MODULES:
        if m in builtin:
            continue
        if m not in by_name:
            raise FileNotFoundError(f"module {m} not found in {root / 'modules.dep'}")
        need(by_name[m])
    return [root / m for m in order]


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/$m.ko || echo "insmod $m failed"; done
mkdir -p /root
mount -t 9p -o {p9},ro,cache=loose hostroot /root || echo "mount hostroot failed"
mount -t proc proc /root/proc; mount -t sysfs sys /root/sys; mount -t devtmpfs dev /root/dev
mount -t tmpfs -o size=256m tmp /root/tmp; mount -t tmpfs -o size=16m run /root/run
mkdir -p /root{checkout}
mount -t 9p -o {p9},ro,cache=loose checkout /root{checkout} || echo "mount checkout failed"
mkdir -p /root{run}
mount -t 9p -o {p9} results /root{run} || echo "mount results failed"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
chroot /root /bin/sh -c 'cd {run} && HOME=/tmp PYTHONDONTWRITEBYTECODE=1 sh ./run.sh > guest.log 2>&1; echo $? > rc'
sync
echo o > /proc/sysrq-trigger
sleep 10
"""


def initramfs(image: Path, run: Path, out: Path) -> None:
    """A newc cpio of busybox, the modules and /init (cpio from Debian's `cpio`, which every image has)."""
    tree = Path(tempfile.mkdtemp(prefix="initramfs-", dir=run.parent))
    try:
        for d in ("bin", "lib", "proc", "sys", "dev", "root"):
            (tree / d).mkdir()
        shutil.copy2(BUSYBOX, tree / "bin" / "busybox")
        mods = _modules(image)
        for m in mods:           # busybox's insmod takes plain .ko files
            (tree / "lib" / f"{module_name(m)}.ko").write_bytes(
                lzma.decompress(m.read_bytes()) if m.suffix == ".xz" else m.read_bytes())
        init = tree / "init"
        init.write_text(INIT.format(modules=" ".join(module_name(m) for m in mods), p9=P9, run=run,
                                    checkout=CHECKOUT))
        init.chmod(0o755)
        names = "\n".join(str(p.relative_to(tree)) for p in sorted(tree.rglob("*"))) + "\n"
        with open(out, "wb") as f:
            subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=names.encode(), cwd=tree, stdout=f,
                           check=True)
    finally:
        shutil.rmtree(tree)


def memory_args(layout: str, node_mib: int, run: Path) -> list[str]:
    """qemu's memory and NUMA options: `numa`, two RAM nodes of node_mib (node 1 CPU-less, in DRAM's memory
    tier); `nvdimm`, node 0 RAM and an emulated NVDIMM of node_mib on node 1, which `setup_nvdimm()` in the
    guest onlines as system RAM through dax kmem -- the kernel puts it in a lower memory tier (the seed's use
    model: PMEM as volatile memory)."""
    if layout == "numa":
        return ["-machine", "pc", "-m", f"{2 * node_mib}M",
                "-object", f"memory-backend-ram,id=m0,size={node_mib}M", "-numa", "node,nodeid=0,memdev=m0,cpus=0-1",
                "-object", f"memory-backend-ram,id=m1,size={node_mib}M", "-numa", "node,nodeid=1,memdev=m1"]
    if layout == "nvdimm":
        return ["-machine", "pc,nvdimm=on", "-m", f"{node_mib}M,slots=2,maxmem=8G",
                "-object", f"memory-backend-ram,id=m0,size={node_mib}M", "-numa", "node,nodeid=0,memdev=m0,cpus=0-1",
                "-numa", "node,nodeid=1",
                "-object", f"memory-backend-file,id=nv0,share=on,mem-path={run / 'nvdimm.img'},size={node_mib}M",
                "-device", "nvdimm,memdev=nv0,node=1"]
    raise ValueError(f"layout must be numa or nvdimm, got {layout!r}")


# the guest's shell lines that turn the NVDIMM into node 1's memory (devdax namespace, then dax kmem); memory
# blocks added later are left offline for daxctl to online (6.12's default onlines them at once, and daxctl
# then refuses the device)
SETUP_NVDIMM = """for m in nfit dax_pmem device_dax kmem; do modprobe $m; done
echo offline > /sys/devices/system/memory/auto_online_blocks
ndctl create-namespace -f -e namespace0.0 --mode=devdax --map=mem >/dev/null
daxctl reconfigure-device --mode=system-ram dax0.0 >/dev/null
"""


def boot(script: str, node_mib: int = 512, timeout: float = 180.0, run_dir: Path | None = None,
         layout: str = "numa", release: str | None = None) -> GuestRun:
    """Run `script` (sh) in a fresh guest of kernel `release` (default: kernel()'s choice); its run directory
    is kept (results, logs). With layout `nvdimm` the script should start with SETUP_NVDIMM."""
    why = missing(release)
    if why:
        raise RuntimeError(why)
    image = kernel(release)
    run = Path(run_dir or tempfile.mkdtemp(prefix="pagetide-guest-", dir="/var/tmp")).resolve()
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.sh").write_text(script)
    for stale in ("rc", "guest.log"):
        (run / stale).unlink(missing_ok=True)
    initrd = run / "initrd.cpio"
    initramfs(image, run, initrd)
    cmd = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", *memory_args(layout, node_mib, run),
           "-kernel", str(image), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 quiet rdinit=/init",
           "-serial", f"file:{run / 'console.log'}",
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={CHECKOUT},mount_tag=checkout,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={run},mount_tag=results,security_model=none,multidevs=remap"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise TimeoutError(f"guest still running after {timeout} s (console: {run / 'console.log'})") from None
    seconds = time.monotonic() - t0
    rc_file = run / "rc"
    rc = int(rc_file.read_text()) if rc_file.exists() and rc_file.read_text().strip() else -1
    log = (run / "guest.log").read_text() if (run / "guest.log").exists() else ""
    console = (run / "console.log").read_text(errors="replace") if (run / "console.log").exists() else ""
    (run / "nvdimm.img").unlink(missing_ok=True)
    if proc.returncode and rc == -1:
        console += "\n[qemu] " + out.decode(errors="replace")
    return GuestRun(rc, log, console, seconds, run)


if __name__ == "__main__":            # a smoke check: python -m pagetide.harness.qemu
    r = boot("numactl --hardware; cat /sys/devices/system/node/has_cpu; echo ok\n")
    print(r.log, f"rc {r.returncode}, {r.seconds:.1f} s, {r.directory}", sep="\n")
    os.sys.exit(0 if r.returncode == 0 else 1)
