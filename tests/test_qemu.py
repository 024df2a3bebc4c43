"""harness/qemu.py's choice of the guest's kernel from a /boot directory made here (no guest booted)."""

from pagetide.harness import qemu


def boot_dir(tmp_path, releases, damon=()):
    for r in releases:
        (tmp_path / f"vmlinuz-{r}").write_bytes(b"")
        config = "CONFIG_NUMA=y\n" + ("CONFIG_DAMON_SYSFS=y\nCONFIG_DAMON_PADDR=y\n" if r in damon else "")
        (tmp_path / f"config-{r}").write_text(config)
    return tmp_path


def test_the_default_kernel_is_debians_own_release_and_a_backport_only_when_named(tmp_path, monkeypatch):
    monkeypatch.delenv(qemu.KERNEL_ENV, raising=False)
    boot = boot_dir(tmp_path, ["6.1.0-9-amd64", "6.1.0-57-amd64", "6.12.118+deb12-amd64"],
                    damon=["6.12.118+deb12-amd64"])
    assert qemu.kernel(boot=boot).name == "vmlinuz-6.1.0-57-amd64"          # by version, not by string
    assert qemu.kernel("6.12.118+deb12-amd64", boot=boot).name == "vmlinuz-6.12.118+deb12-amd64"
    monkeypatch.setenv(qemu.KERNEL_ENV, "6.12.118+deb12-amd64")
    assert qemu.kernel(boot=boot).name == "vmlinuz-6.12.118+deb12-amd64"
    assert qemu.kernel("6.2.0-1-amd64", boot=boot) is None
    assert qemu.damos_release(boot) == "6.12.118+deb12-amd64"


def test_a_backport_alone_is_the_default_and_no_damos_kernel_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv(qemu.KERNEL_ENV, raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    boot = boot_dir(tmp_path / "a", ["6.12.118+deb12-amd64"])
    assert qemu.kernel(boot=boot).name == "vmlinuz-6.12.118+deb12-amd64"
    assert qemu.damos_release(boot) is None                              # no DAMON in its config
    boot = boot_dir(tmp_path / "b", ["6.1.0-57-amd64"], damon=["6.1.0-57-amd64"])
    assert qemu.damos_release(boot) is None                              # DAMON, but before 6.11


def test_module_names_drop_ko_and_xz():
    assert qemu.module_name("kernel/fs/9p/9p.ko.xz") == "9p"
    assert qemu.module_name("kernel/net/9p/9pnet.ko") == "9pnet"
