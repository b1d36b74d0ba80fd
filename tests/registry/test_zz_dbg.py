from tests.registry.test_rest_api import _schema, _operation_ids
def test_dbg(db):
    s = _schema(bindings=1)
    ids = sorted(_operation_ids(s))
    print(len(s["paths"]), [i for i in ids if "container" in i][:50])
