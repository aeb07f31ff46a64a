"""RustDocumentStore against SimpleDocumentStore: every method, persisted bytes, ingestion strategies."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from llama_index.core import Document, MockEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionCache, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.docstore.types import BaseDocumentStore
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.vector_stores import SimpleVectorStore

from llama_index_rs import RustDocumentStore, RustKVStore

DATA = pathlib.Path(__file__).resolve().parent.parent / "demo" / "data"


def corpus(n: int = 120) -> list:
    rows = [json.loads(line) for line in open(DATA / "nodes.jsonl", encoding="utf-8")][:n]
    return [
        TextNode(
            id_=r["id"],
            text=r["text"],
            metadata=r["metadata"],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=r["ref_doc_id"])},
        )
        for r in rows
    ]


def odd_nodes() -> list:
    return [
        TextNode(
            id_="n-é",
            text="héllo 🎉 wörld",
            metadata={"nan": float("nan"), "f": [1e-05, 1e16, -0.0]},
        ),
        TextNode(
            id_="n-big", text="x", metadata={"big": 2**70, "nested": {"a": {"b": [1, {"c": None}]}}}
        ),
        TextNode(
            id_="n-child",
            text="child",
            metadata={"m": "ü"},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-é")},
        ),
        Document(id_="doc-é", text="the document 🎉", metadata={"title": "Tïtle"}),
    ]


def both(**kw):
    return SimpleDocumentStore(**kw), RustDocumentStore(**kw)


def persisted(store, tmp_path, name):
    path = os.path.join(str(tmp_path), name)
    store.persist(path)
    return pathlib.Path(path).read_bytes()


def dumped(x):
    """JSON text of nodes/collections of nodes: NaN metadata compares equal (NaN != NaN in Python)."""
    if isinstance(x, dict):
        return {k: dumped(v) for k, v in x.items()}
    if isinstance(x, list):
        return [dumped(v) for v in x]
    return json.dumps(x.to_dict()) if hasattr(x, "to_dict") else x


def same_state(s, r, tmp_path):
    assert persisted(s, tmp_path, "s.json") == persisted(r, tmp_path, "r.json")


def test_isinstance_and_every_public_method_overridden():
    assert isinstance(RustDocumentStore(), SimpleDocumentStore)
    assert isinstance(RustDocumentStore()._kvstore, RustKVStore)
    for name in {n for n in dir(SimpleDocumentStore) if not n.startswith("_")}:
        assert name in RustDocumentStore.__dict__, name
    for name in {n for n in dir(BaseDocumentStore) if not n.startswith("_")}:
        assert name in RustDocumentStore.__dict__, name


def test_every_method_differential(tmp_path):
    s, r = both()
    nodes = corpus() + odd_nodes()
    for store in (s, r):
        store.add_documents(nodes[:60])
        for n in nodes[60:]:
            store.add_documents([n])
    same_state(s, r, tmp_path)
    for n in nodes[:5] + odd_nodes():
        assert dumped(s.get_document(n.node_id)) == dumped(r.get_document(n.node_id))
        assert s.get_document_hash(n.node_id) == r.get_document_hash(n.node_id)
        assert s.document_exists(n.node_id) and r.document_exists(n.node_id)
    assert s.get_all_document_hashes() == r.get_all_document_hashes()
    assert s.get_all_ref_doc_info() == r.get_all_ref_doc_info()
    assert dumped(s.docs) == dumped(r.docs)
    assert s.get_nodes([nodes[1].node_id, nodes[2].node_id]) == r.get_nodes(
        [nodes[1].node_id, nodes[2].node_id]
    )
    assert s.get_node_dict({0: nodes[3].node_id}) == r.get_node_dict({0: nodes[3].node_id})
    assert s.ref_doc_exists("stdlib-argparse") == r.ref_doc_exists("stdlib-argparse")
    assert s.get_ref_doc_info("nope") is None and r.get_ref_doc_info("nope") is None
    for store in (s, r):
        store.delete_document(nodes[0].node_id)
        store.delete_ref_doc("doc-é")
        store.set_document_hash("x", "h")
        store.set_document_hashes({"y": "h2", "n-é": "h3"})
        assert store.get_document("missing", raise_error=False) is None
        store.delete_document("missing", raise_error=False)
        store.delete_ref_doc("missing", raise_error=False)
    same_state(s, r, tmp_path)
    for store in (s, r):
        for call, msg in [
            (lambda st: st.get_document("missing"), "doc_id missing not found."),
            (lambda st: st.delete_document("missing"), "doc_id missing not found."),
            (lambda st: st.delete_ref_doc("missing"), "ref_doc_id missing not found."),
            (lambda st: st.add_documents([nodes[5]], allow_update=False), "already exists"),
            (lambda st: st.get_node("missing"), "doc_id missing not found."),
        ]:
            with pytest.raises(ValueError, match=msg):
                call(store)
    same_state(s, r, tmp_path)
    assert json.dumps(s.to_dict()) == json.dumps(r.to_dict())
    r2 = RustDocumentStore.from_dict(s.to_dict())
    same_state(s, r2, tmp_path)
    r3 = RustDocumentStore.from_persist_path(os.path.join(str(tmp_path), "s.json"))
    same_state(s, r3, tmp_path)
    r4 = (
        RustDocumentStore.from_persist_dir(str(tmp_path).rstrip("/") + "/none", namespace=None)
        if False
        else None
    )
    assert r4 is None


def test_async_methods(tmp_path):
    s, r = both()
    nodes = corpus(20) + odd_nodes()

    async def go(st):
        await st.async_add_documents(nodes)
        out = [
            await st.aget_document(nodes[0].node_id),
            await st.adocument_exists(nodes[1].node_id),
            await st.aget_document_hash(nodes[2].node_id),
            await st.aget_all_document_hashes(),
            await st.aget_ref_doc_info("stdlib-argparse"),
            await st.aget_all_ref_doc_info(),
            await st.aref_doc_exists("stdlib-argparse"),
            await st.aget_nodes([nodes[3].node_id]),
            await st.aget_node(nodes[4].node_id),
            await st.aget_node_dict({1: nodes[4].node_id}),
        ]
        await st.aset_document_hash("h", "x")
        await st.aset_document_hashes({"h2": "y"})
        await st.adelete_ref_doc("doc-é")
        return out

    assert dumped(asyncio.run(go(s))) == dumped(asyncio.run(go(r)))
    same_state(s, r, tmp_path)


def test_async_delete_document_fixes_ref_doc_info():
    # LlamaIndex's adelete_document looks the ref doc up by the node id and leaves the node in
    # node_ids; ours runs the sync method (documented fix).
    r = RustDocumentStore()
    r.add_documents(odd_nodes())
    asyncio.run(r.adelete_document("n-child"))
    assert r.get_ref_doc_info("doc-é") is None


def test_namespace_and_batch_size(tmp_path):
    s = SimpleDocumentStore(namespace="ns")
    r = RustDocumentStore(namespace="ns")
    for st_ in (s, r):
        st_.add_documents(odd_nodes())
    same_state(s, r, tmp_path)
    r2 = RustDocumentStore(batch_size=10)
    r2.add_documents(odd_nodes())  # any batch size works (SimpleKVStore raises NotImplementedError)
    assert r2.document_exists("n-é")


def test_legacy_and_odd_ref_doc_info_falls_back(tmp_path):
    legacy = {"docstore/ref_doc_info": {"doc-é": {"doc_ids": ["old"], "extra_info": {"a": 1}}}}
    odd = {"docstore/ref_doc_info": {"doc-é": {"node_ids": [1, "x"], "metadata": {}}}}
    for data in (legacy, odd):
        s = SimpleDocumentStore(SimpleKVStore(json.loads(json.dumps(data))))
        r = RustDocumentStore.from_dict(data)
        for st_ in (s, r):
            st_.add_documents(odd_nodes())
        same_state(s, r, tmp_path)


def test_plain_simple_kvstore_inside_works(tmp_path):
    s = SimpleDocumentStore()
    r = RustDocumentStore(SimpleKVStore())
    for st_ in (s, r):
        st_.add_documents(odd_nodes())
    same_state(s, r, tmp_path)
    assert r.get_all_document_hashes() == s.get_all_document_hashes()


def test_bad_files(tmp_path):
    for cls in (SimpleDocumentStore, RustDocumentStore):
        with pytest.raises(FileNotFoundError):
            cls.from_persist_path(os.path.join(str(tmp_path), "missing.json"))
    bad = os.path.join(str(tmp_path), "bad.json")
    pathlib.Path(bad).write_bytes(b'{"docstore/data": {"a": ')
    with pytest.raises(ValueError):
        RustDocumentStore.from_persist_path(bad)
    unknown = {"docstore/data": {"a": {"__type__": "nonsense", "__data__": {"text": "x"}}}}
    s = SimpleDocumentStore.from_dict(unknown)
    r = RustDocumentStore.from_dict(unknown)
    for st_ in (s, r):
        with pytest.raises(ValueError, match="Unknown doc type"):
            st_.get_document("a")


def test_large_files_load_exactly_and_fail_exactly(tmp_path):
    """Files over 2 MiB are read by two threads (kv/mod.rs): same store, same errors as one."""
    nodes = [TextNode(id_=f"n{i}", text=f"line {i}\n" * 60, metadata={"i": i}) for i in range(5000)]
    s = SimpleDocumentStore()
    s.add_documents(nodes)
    path = os.path.join(str(tmp_path), "big.json")
    s.persist(path)
    data = pathlib.Path(path).read_bytes()
    assert len(data) > 4 << 20
    r = RustDocumentStore.from_persist_path(path)
    assert persisted(r, tmp_path, "again.json") == data
    assert dumped(r.get_document("n4321")) == dumped(s.get_document("n4321"))
    # A syntax error three quarters in (the second thread's half), and a truncated file.
    at = data.index(b'"n3750": ')
    for bad in (data[:at] + b'"n3750": {"__data__": nul' + data[at + 30 :], data[:-40]):
        pathlib.Path(path).write_bytes(bad)
        with pytest.raises(ValueError) as ours:
            RustDocumentStore.from_persist_path(path)
        with pytest.raises(ValueError) as theirs:
            SimpleDocumentStore.from_persist_path(path)
        assert str(theirs.value).split(":")[0] in str(ours.value), (ours.value, theirs.value)


# ---- random operation sequences ----

node_ids = st.sampled_from(["a", "b", "é", "🎉", "c"])
ref_ids = st.sampled_from([None, "doc1", "doc-ü"])
texts = st.text(max_size=6)
metadata = st.dictionaries(
    st.sampled_from(["k", "ü", "n"]),
    st.none() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=3),
    max_size=2,
)


def make_node(nid, ref, text, md):
    rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=ref)} if ref else {}
    return TextNode(id_=nid, text=text, metadata=md, relationships=rel)


class DocstoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s, self.r = both()

    def _both(self, fn):
        results = []
        for st_ in (self.s, self.r):
            try:
                results.append(("ok", dumped(fn(st_))))
            except Exception as e:  # noqa: BLE001 - compared below
                results.append((type(e), str(e)))
        assert results[0] == results[1]

    @rule(
        specs=st.lists(st.tuples(node_ids, ref_ids, texts, metadata), min_size=1, max_size=4),
        allow_update=st.booleans(),
        store_text=st.booleans(),
    )
    def add(self, specs, allow_update, store_text):
        nodes = [make_node(*spec) for spec in specs]
        self._both(
            lambda st_: st_.add_documents(nodes, allow_update=allow_update, store_text=store_text)
        )

    @rule(nid=node_ids, raise_error=st.booleans())
    def delete_document(self, nid, raise_error):
        self._both(lambda st_: st_.delete_document(nid, raise_error=raise_error))

    @rule(ref=st.sampled_from(["doc1", "doc-ü", "a"]), raise_error=st.booleans())
    def delete_ref_doc(self, ref, raise_error):
        self._both(lambda st_: st_.delete_ref_doc(ref, raise_error=raise_error))

    @rule(nid=node_ids, h=st.text(max_size=3))
    def set_hash(self, nid, h):
        self._both(lambda st_: st_.set_document_hash(nid, h))

    @rule(nid=node_ids)
    def reads(self, nid):
        self._both(lambda st_: st_.get_document_hash(nid))
        self._both(lambda st_: st_.document_exists(nid))
        self._both(lambda st_: st_.get_document(nid, raise_error=False))
        self._both(lambda st_: st_.get_ref_doc_info(nid))

    @rule()
    def all_reads(self):
        self._both(lambda st_: st_.get_all_document_hashes())
        self._both(lambda st_: st_.get_all_ref_doc_info())

    @invariant()
    def same_bytes(self):
        assert self.r._kvstore.to_json() == json.dumps(self.s._kvstore.to_dict()).encode()


TestDocstoreMachine = DocstoreMachine.TestCase
TestDocstoreMachine.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)


# ---- IngestionPipeline ----


def _chunk_id(i, doc):
    return f"{doc.doc_id}-{i}"


def docs_v1():
    return [
        Document(id_="d1", text="alpha beta gamma. " * 20, metadata={"v": 1}),
        Document(id_="d2", text="délta 🎉 epsilon. " * 20),
        Document(id_="d3", text="zeta eta theta. " * 20),
    ]


def docs_v2():
    return [
        Document(id_="d1", text="alpha beta gamma CHANGED. " * 20, metadata={"v": 2}),
        Document(id_="d2", text="délta 🎉 epsilon. " * 20),
        Document(id_="d4", text="new document. " * 20),
    ]


@pytest.mark.parametrize(
    "strategy",
    [
        DocstoreStrategy.DUPLICATES_ONLY,
        DocstoreStrategy.UPSERTS,
        DocstoreStrategy.UPSERTS_AND_DELETE,
    ],
)
def test_ingestion_pipeline_strategies(strategy, tmp_path):
    outs = []
    for cls in (SimpleDocumentStore, RustDocumentStore):
        pipe = IngestionPipeline(
            transformations=[
                SentenceSplitter(chunk_size=64, chunk_overlap=0, id_func=_chunk_id),
                MockEmbedding(embed_dim=4),
            ],
            docstore=cls(),
            docstore_strategy=strategy,
            vector_store=SimpleVectorStore(),
        )
        first = pipe.run(documents=docs_v1())
        second = pipe.run(documents=docs_v2())
        d = tmp_path / cls.__name__
        pipe.persist(str(d))
        loaded = IngestionPipeline(
            transformations=[
                SentenceSplitter(chunk_size=64, chunk_overlap=0, id_func=_chunk_id),
                MockEmbedding(embed_dim=4),
            ],
            docstore=cls(),
            docstore_strategy=strategy,
            vector_store=SimpleVectorStore(),
        )
        loaded.load(str(d))
        third = loaded.run(documents=docs_v2())
        outs.append(
            (
                [n.node_id for n in first] == [n.node_id for n in first] and len(first),
                [n.text for n in second],
                [n.text for n in third],
                (d / "docstore.json").read_bytes(),
                (d / "llama_cache").read_bytes(),
                pipe.docstore.get_all_document_hashes(),
            )
        )
    assert outs[0][1:] == outs[1][1:]


def test_ingestion_cache_over_rust_kvstore(tmp_path):
    nodes = corpus(5)
    outs = []
    for kv in (SimpleKVStore(), RustKVStore()):
        cache = IngestionCache(cache=kv)
        cache.put("h", nodes)
        path = str(tmp_path / f"{type(kv).__name__}.json")
        cache.persist(path)
        loaded = IngestionCache.from_persist_path(path)
        if isinstance(kv, RustKVStore):
            loaded = IngestionCache(cache=RustKVStore.from_persist_path(path))
        outs.append((pathlib.Path(path).read_bytes(), loaded.get("h")))
        cache.clear()
        assert cache.get("h") is None
    assert outs[0] == outs[1]


def _deep(x):
    """Everything observable about a value: types at every level, fields set, extras, private attrs."""
    from llama_index.core.bridge.pydantic import BaseModel

    if isinstance(x, BaseModel):
        return (
            type(x),
            {k: _deep(v) for k, v in x.__dict__.items()},
            frozenset(x.__pydantic_fields_set__),
            _deep(x.__pydantic_extra__),
            _deep(x.__pydantic_private__),
        )
    if isinstance(x, dict):
        return (type(x), [(_deep(k), _deep(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x), [_deep(v) for v in x])
    if isinstance(x, float) and x != x:
        return (float, "nan")
    return (type(x), x)


def _stored_kinds() -> list:
    from llama_index.core.schema import ImageDocument, ImageNode, IndexNode, ObjectType

    related = RelatedNodeInfo(
        node_id="src", node_type=ObjectType.DOCUMENT, metadata={"k": [1, {"z": None}]}, hash="h"
    )
    rich = TextNode(
        id_="rich",
        text='tëxt\n"quoted" \\ \t\x00 🎉 \ud800',
        metadata={"nan": float("nan"), "l": [1, 2.5, "x", [True]], "d": {"a": {"b": 2**70}}},
        excluded_embed_metadata_keys=["l"],
        excluded_llm_metadata_keys=["d", "nan"],
        relationships={
            NodeRelationship.SOURCE: related,
            NodeRelationship.CHILD: [RelatedNodeInfo(node_id="c1"), RelatedNodeInfo(node_id="c2")],
            NodeRelationship.PREVIOUS: RelatedNodeInfo(node_id="p", node_type="custom"),
        },
        start_char_idx=3,
        end_char_idx=40,
        embedding=[0.5, -1.0, 1e-05],
        metadata_template="{key}={value}",
        text_template="{content}",
        mimetype="text/markdown",
    )
    return odd_nodes() + [
        rich,
        TextNode(id_="plain", text=""),
        ImageNode(id_="img", text="caption", image="aGVsbG8=", image_mimetype="image/png"),
        IndexNode(id_="idx", text="index", index_id="other-index", obj=None),
        ImageDocument(id_="imgdoc", text="d", image="aGVsbG8="),
        Document(id_="doc2", text="doc", excluded_llm_metadata_keys=["a"], metadata={"a": 1}),
    ]


def _raw_docs() -> dict:
    """Stored values that doc_to_json never writes, but that files and users can hold."""
    return {
        "legacy-text": {
            "__data__": {"text": "t", "doc_id": "legacy-text", "extra_info": {"a": 1}},
            "__type__": "1",
        },
        "legacy-doc": {
            "__data__": {
                "text": "t",
                "doc_id": "legacy-doc",
                "extra_info": None,
                "relationships": {"1": "x"},
            },
            "__type__": "4",
        },
        "text-resource": {
            "__data__": {
                "id_": "text-resource",
                "text_resource": {"text": "from resource"},
                "class_name": "TextNode",
            },
            "__type__": "1",
        },
        "type-first": {"__type__": "1", "__data__": {"id_": "type-first", "text": "x"}},
        "no-class-name": {"__data__": {"id_": "no-class-name", "text": "x"}, "__type__": "1"},
        "extra-keys": {
            "__data__": {"id_": "extra-keys", "text": "x", "unknown": [1]},
            "__type__": "1",
            "more": 1,
        },
        "coerced": {
            "__data__": {"id_": "coerced", "text": "x", "embedding": [1, 2], "start_char_idx": 2.0},
            "__type__": "1",
        },
        "self-key": {"__data__": {"id_": "self-key", "self": 1}, "__type__": "1"},
        "bad-field": {"__data__": {"id_": "bad-field", "text": 5}, "__type__": "1"},
        "unknown-type": {"__data__": {"id_": "u"}, "__type__": "9"},
        "int-type": {"__data__": {"id_": "i"}, "__type__": 1},
        "no-type": {"__data__": {"id_": "n"}},
        "data-list": {"__data__": [1], "__type__": "1"},
        "not-a-dict": [1, 2],
    }


def _outcome(store, doc_id):
    try:
        return ("ok", _deep(store.get_document(doc_id)))
    except Exception as e:  # noqa: BLE001 - the exception itself is what is compared
        return ("raised", type(e), str(e))


def test_get_document_builds_exactly_what_simple_docstore_builds(tmp_path):
    s, r = both()
    kinds = _stored_kinds()
    for store in (s, r):
        store.add_documents(kinds)
        for key, value in _raw_docs().items():
            store._kvstore.put(key, value, collection=store._node_collection)
    same_state(s, r, tmp_path)
    for doc_id in [n.node_id for n in kinds] + list(_raw_docs()) + ["missing"]:
        assert _outcome(r, doc_id) == _outcome(s, doc_id), doc_id
    assert r.get_document("missing", raise_error=False) is None
    # The same after a reload from the persisted file (values then live in the loaded bytes).
    path = os.path.join(str(tmp_path), "r.json")
    loaded = RustDocumentStore.from_persist_path(path)
    for doc_id in [n.node_id for n in kinds] + list(_raw_docs()):
        assert _outcome(loaded, doc_id) == _outcome(s, doc_id), doc_id


def test_docs_and_get_nodes_match_for_every_node_kind():
    s, r = both()
    kinds = _stored_kinds()
    for store in (s, r):
        store.add_documents(kinds)
    assert _deep(r.docs) == _deep(s.docs)
    ids = [n.node_id for n in kinds]
    assert _deep(r.get_nodes(ids)) == _deep(s.get_nodes(ids))


def test_returned_nodes_share_nothing_with_the_store():
    r = RustDocumentStore()
    r.add_documents(_stored_kinds())
    first = r.get_document("rich")
    first.metadata["l"].append("mutated")
    first.metadata["d"]["a"]["b"] = 0
    first.relationships[NodeRelationship.SOURCE].metadata["k"][1]["z"] = "mutated"
    first.excluded_llm_metadata_keys.append("x")
    again = r.get_document("rich")
    assert again.metadata["l"] == [1, 2.5, "x", [True]]
    assert again.metadata["d"] == {"a": {"b": 2**70}}
    assert again.relationships[NodeRelationship.SOURCE].metadata == {"k": [1, {"z": None}]}
    assert again.excluded_llm_metadata_keys == ["d", "nan"]
    assert again.metadata["l"] is not r.get_document("rich").metadata["l"]


def test_get_document_honours_overrides_and_plain_kvstores():
    class Kv(RustKVStore):
        def get(self, key, collection="data"):
            got = super().get(key, collection)
            if got is not None:
                got["__data__"]["text"] = "from override"
            return got

    r = RustDocumentStore(Kv())
    r.add_documents([TextNode(id_="a", text="stored")])
    assert r.get_document("a").text == "from override"
    plain = RustDocumentStore(SimpleKVStore())
    plain.add_documents(_stored_kinds())
    s = SimpleDocumentStore()
    s.add_documents(_stored_kinds())
    for n in _stored_kinds():
        assert _deep(plain.get_document(n.node_id)) == _deep(s.get_document(n.node_id))
