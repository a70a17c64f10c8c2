"""`polewatch keys` and firmware.keys: provisioning, permissions, rotation."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography import x509

from firmware import keys as K
from firmware.cli import main


def mode(p) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_cli_provisioning_flow(tmp_path, capsys, broker):
    dev, dept = tmp_path / "dev", tmp_path / "dept"
    assert main(["keys", "department-init", "--dir", str(dept), "--kid", "2026a"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kid"] == "2026a" and out["fingerprint"].startswith("SHA256:")
    assert mode(dept / "2026a.key") == 0o600 and mode(dept / "receiver.key") == 0o600

    assert main(["keys", "init", "--dir", str(dev), "--device", "pole-017", "--agency", "demo-pd"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert mode(dev / "device.key") == 0o600 and mode(dev / "tls.key") == 0o600 and mode(dev) == 0o700
    csr = x509.load_pem_x509_csr((dev / "tls.csr").read_bytes())
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "pole-017"
    # refuses to replace a device key by accident
    assert main(["keys", "init", "--dir", str(dev), "--device", "pole-017", "--agency", "demo-pd"]) == 2
    assert "already exists" in capsys.readouterr().err

    cert = tmp_path / "tls.crt"
    cert.write_bytes(broker.sign_csr((dev / "tls.csr").read_bytes()))
    assert main(["keys", "install-cert", "--dir", str(dev), str(cert)]) == 0
    assert main(["keys", "install-ca", "--dir", str(dev), str(broker.ca_file)]) == 0
    assert main(["keys", "install-department", "--dir", str(dev), "--kid", "2026a", str(dept / "2026a.pub")]) == 0
    assert main(["keys", "install-receiver", "--dir", str(dev), str(dept / "receiver.pub")]) == 0
    capsys.readouterr()
    assert main(["keys", "show", "--dir", str(dev)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["current_kid"] == "2026a" and "CN=pole-017" in shown["certificate"]["subject"]
    assert set(shown["receiver"]) == {"hq"}

    # rotation: a second department key becomes current, the first stays installed
    assert main(["keys", "department-init", "--dir", str(dept), "--kid", "2026b"]) == 0
    assert main(["keys", "install-department", "--dir", str(dev), "--kid", "2026b", str(dept / "2026b.pub")]) == 0
    loaded = K.DeviceKeys.load(dev)
    assert loaded.current_kid == "2026b" and set(loaded.department_keys) == {"2026a", "2026b"}
    assert set(K.DepartmentKeys.load(dept).private_keys) == {"2026a", "2026b"}


def test_bad_inputs_give_clear_errors(tmp_path, capsys, broker):
    dev = tmp_path / "dev"
    K.init_device(dev, "pole-1", "demo-pd")
    other_cert, _ = broker.client_cert("someone-else")
    assert main(["keys", "install-cert", "--dir", str(dev), str(other_cert)]) == 2
    assert "does not match" in capsys.readouterr().err
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    assert main(["keys", "install-department", "--dir", str(dev), str(junk)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err
    assert main(["keys", "install-department", "--dir", str(dev), str(dev / "device.pub")]) == 2
    assert "X25519PublicKey" in capsys.readouterr().err  # an Ed25519 key is the wrong kind
    assert main(["keys", "show", "--dir", str(tmp_path / "nowhere")]) == 2
    with pytest.raises(K.KeyFileError, match="key id"):
        K.DepartmentKeys.generate(tmp_path / "d", "bad/kid")
