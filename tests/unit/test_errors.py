from portmatrix.errors import CaptureError, ExitCode, MatrixError, PortmatrixError


def test_exit_codes():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]
    assert ExitCode.BAD_INPUT == 2


def test_message_names_file_place_and_fix():
    err = MatrixError("ports: 70000 is too big", file="m.yaml", where="9", hint="use 0-65535")
    assert str(err) == "m.yaml:9: ports: 70000 is too big — use 0-65535"
    assert isinstance(err, PortmatrixError)


def test_message_without_place_or_hint():
    assert str(PortmatrixError("broken")) == "broken"
    assert str(CaptureError("cut short", file="a.pcap")) == "a.pcap: cut short"
    assert str(PortmatrixError("bad", where="--role")) == "--role: bad"
