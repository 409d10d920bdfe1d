import time
from webapp import accounts as a
def test_accounts(tmp_path):
    o = a.add_user(tmp_path, "Ana@Shop.example", "correct horse battery", role=a.Role.OWNER)
    assert o.email == "ana@shop.example" and o.is_owner
    assert a.check_password(tmp_path, "ana@shop.example", "correct horse battery") == o
    assert a.check_password(tmp_path, "ana@shop.example", "wrong wrong wrong") is None
    assert a.check_password(tmp_path, "bob@shop.example", "correct horse battery") is None
    t = a.start_session(tmp_path, o.id)
    assert a.session_user(tmp_path, t) == o
    assert a.session_user(tmp_path, t, now=time.time() + a.SESSION_TTL_S + 1) is None
    a.end_session(tmp_path, t); assert a.session_user(tmp_path, t) is None
    import pytest
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "ana@shop.example", "0123456789")
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "x", "0123456789")
    with pytest.raises(a.AccountError): a.add_user(tmp_path, "b@c.de", "short")
