"""wire.py - a second casenet client's primitives, written from proto/PROTOCOL.md,
proto/casenet.proto and docs/ alone (never the C sources): protobuf by hand,
PAE, key ids, the directory, envelopes, receipts, attachments, checkpoints
and Merkle proofs. Used by second_client.py; every rule cites its section."""

import base64
import hashlib
import hmac
import os
import struct
import time

import nacl.bindings as nb
import nacl.signing

# ---- protobuf (proto3) by hand: enough for casenet.proto ----------------


def varint(n):
    if n < 0:
        n += 1 << 64  # int64 negatives: ten bytes, two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc(*fields):
    """fields: (number, value) in field-number order. int -> varint (bool
    too), bytes/str -> length-delimited, list -> repeated: a list of ints is
    packed, of bytes/str one record each. Default values are omitted."""
    out = bytearray()
    for num, val in fields:
        if val is None:
            continue
        if isinstance(val, list):
            if val and isinstance(val[0], int):
                packed = b"".join(varint(v) for v in val)
                out += varint(num << 3 | 2) + varint(len(packed)) + packed
            else:
                for v in val:
                    v = v.encode() if isinstance(v, str) else v
                    out += varint(num << 3 | 2) + varint(len(v)) + v
            continue
        if isinstance(val, bool):
            val = int(val)
        if isinstance(val, int):
            if val:
                out += varint(num << 3) + varint(val)
            continue
        if isinstance(val, str):
            val = val.encode()
        if val:
            out += varint(num << 3 | 2) + varint(len(val)) + val
    return bytes(out)


def _rd_varint(b, i):
    n = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


class Msg:
    """A parsed message: number -> list of raw values (int or bytes)."""

    def __init__(self, data):
        self.f = {}
        i = 0
        while i < len(data):
            key, i = _rd_varint(data, i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, i = _rd_varint(data, i)
            elif wt == 2:
                ln, i = _rd_varint(data, i)
                if i + ln > len(data):
                    raise ValueError("truncated field")
                v, i = data[i:i + ln], i + ln
            elif wt == 1:
                v, i = data[i:i + 8], i + 8
            elif wt == 5:
                v, i = data[i:i + 4], i + 4
            else:
                raise ValueError("wire type %d" % wt)
            if num == 0:
                raise ValueError("field 0")
            self.f.setdefault(num, []).append(v)

    def has(self, n):
        return n in self.f

    def int(self, n, signed=False):
        v = self.f.get(n, [0])[-1]
        if signed and v >= 1 << 63:
            v -= 1 << 64
        return v

    def bytes(self, n):
        return self.f.get(n, [b""])[-1]

    def str(self, n):
        return self.bytes(n).decode("utf-8")

    def msg(self, n):
        return Msg(self.bytes(n))

    def rep(self, n):
        return self.f.get(n, [])

    def rep_str(self, n):
        return [v.decode("utf-8") for v in self.rep(n)]

    def rep_msg(self, n):
        return [Msg(v) for v in self.rep(n)]

    def rep_int(self, n):
        out = []
        for v in self.rep(n):
            if isinstance(v, int):
                out.append(v)
            else:  # packed
                i = 0
                while i < len(v):
                    x, i = _rd_varint(v, i)
                    out.append(x)
        return out


# ---- §1 conventions ------------------------------------------------------


def le64(n):
    return struct.pack("<Q", n)


def pae(domain, *parts):
    d = domain.encode()
    out = le64(len(parts) + 1) + le64(len(d)) + d
    for p in parts:
        p = p.encode() if isinstance(p, str) else p
        out += le64(len(p)) + p
    return out


def key_id(pk):
    return hashlib.sha256(pk).digest()[:8].hex()


def now_ms():
    return int(time.time() * 1000)


SIGN, BOX, CURVE = 1, 2, 3

# Error codes (§9)
E = dict(OK=0, BAD_REQUEST=1, UNAUTHENTICATED=2, FORBIDDEN=3, NOT_FOUND=4,
         CONFLICT=5, TOO_LARGE=6, RATE_LIMITED=7, UNAVAILABLE=8, BAD_SIGNATURE=9,
         UNKNOWN_RECIPIENT=10, CLOCK_SKEW=11, VERSION=12, STALE_DIRECTORY=13,
         DIRECTORY_EXPIRED=14, QUOTA_EXCEEDED=15)
E_NAME = {v: k for k, v in E.items()}


class ProtoError(Exception):
    """A rule of PROTOCOL.md broken by what we received."""


# ---- §2 keys ---------------------------------------------------------------


class Keyring:
    """A member's SecretKeyFile (home's member.key), checked as §2 says."""

    def __init__(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            if os.fstat(fd).st_mode & 0o077:
                raise ProtoError("secret key file readable by group or others")
            data = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        m = Msg(data)
        self.member = m.str(1)
        self.pairs = []  # (use, key_id, pk, sk, created_at_ms), file order
        for kp in m.rep_msg(2):
            use, kid, pk, sk, created = kp.int(1), kp.str(2), kp.bytes(3), kp.bytes(4), kp.int(5, True)
            if use not in (1, 2, 3) or len(pk) != 32 or kid != key_id(pk):
                raise ProtoError("malformed key pair")
            if use == SIGN:
                if len(sk) != 64 or nb.crypto_sign_seed_keypair(sk[:32])[1] != sk:
                    raise ProtoError("sign key inconsistent")
            elif len(sk) != 32 or nb.crypto_scalarmult_base(sk) != pk:
                raise ProtoError("x25519 key inconsistent")
            self.pairs.append((use, kid, pk, sk, created))

    def current(self, use):
        best = None
        for p in self.pairs:  # largest created_at_ms, the later one on a tie
            if p[0] == use and (best is None or p[4] >= best[4]):
                best = p
        if best is None:
            raise ProtoError("no key of use %d" % use)
        return best

    def box_secret(self, kid):
        for p in self.pairs:
            if p[0] == BOX and p[1] == kid:
                return p[2], p[3]
        return None


def read_pubfile(path):
    m = Msg(open(path, "rb").read())
    keys = [(k.int(1), k.str(2), k.bytes(3), k.int(4, True), k.int(5, True)) for k in m.rep_msg(2)]
    return m.str(1), keys


def authority_key(path):
    member, keys = read_pubfile(path)
    if member != "authority" or len(keys) != 1 or keys[0][0] != SIGN:
        raise ProtoError("authority.pub: not exactly one signing key of 'authority'")
    pk = keys[0][2]
    if len(pk) != 32 or keys[0][1] != key_id(pk):
        raise ProtoError("authority.pub: bad key")
    return pk


def ed_verify(pk, msg, sig):
    if len(sig) != 64:
        return False
    try:
        nacl.signing.VerifyKey(pk).verify(msg, sig)
        return True
    except Exception:
        return False


def ed_sign(sk64, msg):
    return nacl.signing.SigningKey(sk64[:32]).sign(msg).signature


# ---- §3 the directory ------------------------------------------------------


class Directory:
    def __init__(self, signed, authority_pk, now=None):
        sd = Msg(signed)  # step 1
        body, sig, akid = sd.bytes(1), sd.bytes(2), sd.str(3)
        if akid != key_id(authority_pk) or not ed_verify(
                authority_pk, pae("casenet.directory.v1", body), sig):
            raise ProtoError("BAD_SIGNATURE: directory")  # step 2
        b = Msg(body)  # step 3 (only the checks this client relies on)
        self.bytes = signed
        self.version = b.int(1)
        self.expires_at_ms = b.int(3, True)
        self.network = b.str(4)
        self.members = {}
        for m in b.rep_msg(5):
            keys = []
            for k in m.rep_msg(6):
                use, kid, pk = k.int(1), k.str(2), k.bytes(3)
                if len(pk) != 32 or kid != key_id(pk):
                    raise ProtoError("BAD_REQUEST: directory key")
                keys.append(dict(use=use, key_id=kid, key=pk, valid_from=k.int(4, True),
                                 valid_until=k.int(5, True)))
            self.members[m.str(1)] = dict(id=m.str(1), roles=m.rep_str(3), groups=m.rep_str(4),
                                          status=m.int(5), keys=keys)
        if self.version < 1:
            raise ProtoError("BAD_REQUEST: version 0")
        if self.expires_at_ms <= (now or now_ms()):
            raise ProtoError("EXPIRED")  # step 5
        brokers = [m for m in self.members.values() if "broker" in m["roles"]]
        if len(brokers) != 1:
            raise ProtoError("no single broker member")
        self.broker = brokers[0]["id"]

    @staticmethod
    def valid_at(k, t):  # §3.3
        return k["valid_from"] <= t and (k["valid_until"] == 0 or t < k["valid_until"])

    def current_key(self, member, use, t=None):
        t = t or now_ms()
        best = None
        for k in self.members[member]["keys"]:
            if k["use"] == use and self.valid_at(k, t) and (best is None or k["valid_from"] > best["valid_from"]):
                best = k
        if best is None:
            raise ProtoError("%s has no current key of use %d" % (member, use))
        return best

    def key_by_id(self, member, use, kid, t):
        """The key named by kid, of that use, valid at t (§3.3), or None."""
        m = self.members.get(member)
        if m is None or m["status"] != 1:
            return None
        for k in m["keys"]:
            if k["use"] == use and k["key_id"] == kid and self.valid_at(k, t):
                return k["key"]
        return None


# ---- §4 envelopes ------------------------------------------------------------


def key_commitment(k):
    return hashlib.blake2b(b"casenet.key-commit.v1", digest_size=32, key=k).digest()


def seal_box_fixed(m, pk, esk):
    """crypto_box_seal with a chosen ephemeral key (§4.4, for the worked example)."""
    epk = nb.crypto_scalarmult_base(esk)
    nonce = hashlib.blake2b(epk + pk, digest_size=24).digest()
    return epk + nb.crypto_box(m, nonce, pk, esk)


def build_header(h):
    wrapped = [enc((1, w["recipient"]), (2, w["box_key_id"]), (3, w["sealed_key"]))
               for w in h["wrapped_keys"]]
    return enc((1, h.get("version", 1)), (2, h["message_id"]), (3, h["sender"]),
               (4, h["sign_key_id"]), (5, h["recipients"]), (6, h["kind"]),
               (7, h.get("urgency", 0)), (8, h["created_at_ms"]), (9, h.get("expires_at_ms", 0)),
               (10, h.get("status", 0)), (11, h.get("in_reply_to", b"")),
               (12, h.get("case_ref", b"")), (13, h["nonce"]), (14, h["ciphertext_hash"]),
               (15, h["key_commitment"]), (16, wrapped), (17, h.get("blob_ids", [])))


def seal(directory, kr, recipients, kind, payload, urgency=3, status=1, fixed=None,
         created_at_ms=None, expires_at_ms=0, blob_ids=(), in_reply_to=b"", case_ref=b"",
         tamper=None):
    """Seals payload (bytes) as kind from kr.member to recipients (§4.2-4.5).
    fixed: dict of K, nonce, message_id, esk for deterministic sealing.
    tamper(header dict): changes the header before it is serialised.
    Returns (envelope bytes, header dict)."""
    fixed = fixed or {}
    k = fixed.get("K") or os.urandom(32)
    nonce = fixed.get("nonce") or os.urandom(24)
    mid = fixed.get("message_id") or os.urandom(16)
    ad = pae("casenet.payload.v1", mid, kr.member)
    ct = nb.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ad, nonce, k)
    created = created_at_ms if created_at_ms is not None else now_ms()
    wrapped = []
    for r in recipients:
        bk = directory.current_key(r, BOX) if r in directory.members else {
            "key_id": "0" * 16, "key": os.urandom(32)}
        sealed = seal_box_fixed(k, bk["key"], fixed["esk"]) if "esk" in fixed else nb.crypto_box_seal(k, bk["key"])
        wrapped.append(dict(recipient=r, box_key_id=bk["key_id"], sealed_key=sealed))
    sign = kr.current(SIGN)
    h = dict(version=1, message_id=mid, sender=kr.member, sign_key_id=sign[1],
             recipients=list(recipients), kind=kind, urgency=urgency, created_at_ms=created,
             expires_at_ms=expires_at_ms, status=status, in_reply_to=in_reply_to,
             case_ref=case_ref, nonce=nonce, ciphertext_hash=hashlib.sha256(ct).digest(),
             key_commitment=key_commitment(k), wrapped_keys=wrapped, blob_ids=list(blob_ids),
             ciphertext=ct, sign_sk=sign[3])
    if tamper:
        tamper(h)
    hb = build_header(h)
    sig = ed_sign(h["sign_sk"], pae("casenet.envelope.v1", hb))
    if "signature" in h:
        sig = h["signature"]
    return enc((1, hb), (2, sig), (3, h["ciphertext"])), h


def parse_header(hb):
    m = Msg(hb)
    return dict(version=m.int(1), message_id=m.bytes(2), sender=m.str(3), sign_key_id=m.str(4),
                recipients=m.rep_str(5), kind=m.int(6), urgency=m.int(7),
                created_at_ms=m.int(8, True), expires_at_ms=m.int(9, True), status=m.int(10),
                in_reply_to=m.bytes(11), case_ref=m.bytes(12), nonce=m.bytes(13),
                ciphertext_hash=m.bytes(14), key_commitment=m.bytes(15),
                wrapped_keys=[dict(recipient=w.str(1), box_key_id=w.str(2), sealed_key=w.bytes(3))
                              for w in m.rep_msg(16)],
                blob_ids=m.rep(17))


def open_envelope(directory, kr, env):
    """§4.7: verify and open env as kr.member. Returns (header, Payload Msg, payload bytes)."""
    e = Msg(env)
    hb, sig, ct = e.bytes(1), e.bytes(2), e.bytes(3)
    h = parse_header(hb)
    if h["version"] != 1:
        raise ProtoError("VERSION")
    for name, n in (("message_id", 16), ("nonce", 24), ("ciphertext_hash", 32), ("key_commitment", 32)):
        if len(h[name]) != n:
            raise ProtoError("BAD_REQUEST: " + name)
    if len(sig) != 64 or len(ct) < 16:
        raise ProtoError("BAD_REQUEST: sizes")
    if sorted(w["recipient"] for w in h["wrapped_keys"]) != sorted(h["recipients"]):
        raise ProtoError("BAD_REQUEST: wrapped keys")
    spk = directory.key_by_id(h["sender"], SIGN, h["sign_key_id"], h["created_at_ms"])
    if spk is None:
        raise ProtoError("UNAUTHENTICATED: sender key")
    if not ed_verify(spk, pae("casenet.envelope.v1", hb), sig):
        raise ProtoError("BAD_SIGNATURE: envelope")
    if not hmac.compare_digest(hashlib.sha256(ct).digest(), h["ciphertext_hash"]):
        raise ProtoError("BAD_REQUEST: ciphertext hash")
    mine = [w for w in h["wrapped_keys"] if w["recipient"] == kr.member]
    if not mine:
        raise ProtoError("NOT_RECIPIENT")
    box = kr.box_secret(mine[0]["box_key_id"])
    if box is None:
        raise ProtoError("UNKNOWN_KEY " + mine[0]["box_key_id"])
    k = nb.crypto_box_seal_open(mine[0]["sealed_key"], box[0], box[1])
    if not hmac.compare_digest(key_commitment(k), h["key_commitment"]):
        raise ProtoError("COMMIT")
    ad = pae("casenet.payload.v1", h["message_id"], h["sender"])
    pt = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, ad, h["nonce"], k)
    p = Msg(pt)
    # §6: the oneof must match the kind (kind n -> field n for 1..9)
    if h["kind"] in range(1, 10) and not p.has(h["kind"]):
        raise ProtoError("BAD_REQUEST: payload does not match the kind")
    if h["kind"] == 1:  # the urgency the referral states is the header's
        if (p.msg(1).int(6) or 3) != (h["urgency"] or 3):
            raise ProtoError("BAD_REQUEST: urgency mismatch")
    return h, p, pt


def referral(case_id, summary, urgency=1, attachments=()):
    r = enc((1, case_id), (5, [3]), (6, urgency), (16, enc((1, 1))), (19, summary))
    return enc((1, r), (20, list(attachments)))


# ---- §5 receipts ------------------------------------------------------------


def sign_receipt(kr, message_id, env_hash, sender, status, reason="", outcome=0, note_id=b"",
                 signed_at_ms=None, key=None):
    sign = kr.current(SIGN)
    body = enc((1, message_id), (2, env_hash), (3, sender), (4, kr.member), (5, sign[1]),
               (6, status), (7, reason), (9, signed_at_ms or now_ms()), (10, outcome),
               (11, note_id))
    sig = ed_sign(key or sign[3], pae("casenet.receipt.v1", body))
    return enc((1, body), (2, sig))


def verify_receipt(directory, signed, domain="casenet.receipt.v1"):
    """§5.1 / §5.2. Returns the body Msg."""
    sr = Msg(signed)
    body, sig = sr.bytes(1), sr.bytes(2)
    b = Msg(body)
    if len(b.bytes(1)) != 16 or len(b.bytes(2)) != 32:
        raise ProtoError("BAD_REQUEST: receipt sizes")
    if domain == "casenet.receipt.v1":
        signer, kid, t = b.str(4), b.str(5), b.int(9, True)
    else:
        signer, kid, t = b.str(5), b.str(6), b.int(3, True)
        if signer != directory.broker:
            raise ProtoError("UNAUTHENTICATED: broker_id is not the broker")
    pk = directory.key_by_id(signer, SIGN, kid, t)
    if pk is None:
        raise ProtoError("UNAUTHENTICATED: receipt key")
    if not ed_verify(pk, pae(domain, body), sig):
        raise ProtoError("BAD_SIGNATURE: receipt")
    return b


# ---- §4.9 attachments ----------------------------------------------------------

CHUNK = 1048576


def encrypt_file(data, key=None, header=None):
    """Returns (manifest fields, chunks). With key and header given, encrypts
    through init_pull as §4.9 says a resuming sender may."""
    st = nb.crypto_secretstream_xchacha20poly1305_state()
    if header is None:
        key = key or nb.crypto_secretstream_xchacha20poly1305_keygen()
        header = nb.crypto_secretstream_xchacha20poly1305_init_push(st, key)
    else:
        nb.crypto_secretstream_xchacha20poly1305_init_pull(st, header, key)
    count = max(1, -(-len(data) // CHUNK))
    chunks = []
    for i in range(count):
        tag = 3 if i == count - 1 else 0
        chunks.append(nb.crypto_secretstream_xchacha20poly1305_push(
            st, data[i * CHUNK:(i + 1) * CHUNK], None, tag))
    return dict(size=len(data), sha256=hashlib.sha256(data).digest(), key=key,
                stream_header=header, chunk_size=CHUNK, chunk_count=count), chunks


def manifest(name, media, m, blob_id):
    return enc((1, name), (2, media), (3, m["size"]), (4, m["sha256"]), (5, m["key"]),
               (6, m["stream_header"]), (7, m["chunk_size"]), (8, m["chunk_count"]), (9, blob_id))


def decrypt_chunks(att, get_chunk):
    """§4.9 'What a recipient checks': att is an Attachment Msg."""
    size, sha, key, hdr = att.int(3), att.bytes(4), att.bytes(5), att.bytes(6)
    csize, count = att.int(7), att.int(8)
    if len(sha) != 32 or len(key) != 32 or len(hdr) != 24 or csize != CHUNK or not 1 <= count <= 65536:
        raise ProtoError("BAD_REQUEST: manifest")
    st = nb.crypto_secretstream_xchacha20poly1305_state()
    nb.crypto_secretstream_xchacha20poly1305_init_pull(st, hdr, key)
    out = bytearray()
    for i in range(count):
        m, tag = nb.crypto_secretstream_xchacha20poly1305_pull(st, get_chunk(i), None)
        if (tag == 3) != (i == count - 1):
            raise ProtoError("FINAL tag misplaced")
        if i < count - 1 and len(m) != csize:
            raise ProtoError("short chunk")
        out += m
    if len(out) != size or hashlib.sha256(out).digest() != sha:
        raise ProtoError("size or SHA-256 differs from the manifest")
    return bytes(out)


# ---- §10.2 Merkle ----------------------------------------------------------------


def leaf_hash(e):
    return hashlib.sha256(b"\x00" + e).digest()


def node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_len(m, n):
    inner = (m ^ (n - 1)).bit_length()
    return inner + bin(m >> inner).count("1")


def verify_inclusion(h, m, n, proof, root):
    if m >= n or len(proof) != inclusion_len(m, n):
        return False
    fn, sn, x = m, n - 1, h
    for p in proof:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            x = node(p, x)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            x = node(x, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(x, root)


def consistency_len(n1, n2):
    tz = (n1 & -n1).bit_length() - 1
    pow2 = n1 & (n1 - 1) == 0
    return inclusion_len(n1 - 1, n2) - tz + (0 if pow2 else 1)


def verify_consistency(n1, n2, proof, r1, r2):
    if n1 > n2 or n1 == 0:
        return False
    if n1 == n2:
        return len(proof) == 0 and hmac.compare_digest(r1, r2)
    if not proof or len(proof) != consistency_len(n1, n2):
        return False
    path = ([r1] if n1 & (n1 - 1) == 0 else []) + list(proof)
    fn, sn = n1 - 1, n2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, r1) and hmac.compare_digest(sr, r2)


# ---- §10.3 checkpoints -------------------------------------------------------------


def note_key_id(name, pk):
    return hashlib.sha256(name.encode() + b"\x0a\x01" + pk).digest()[:4]


def _canon_b64(s, n):
    raw = base64.b64decode(s, validate=True)
    if len(raw) != n or base64.b64encode(raw).decode() != s:
        raise ProtoError("BAD_REQUEST: non-canonical base64")
    return raw


def _canon_dec(s):
    if not s.isdigit() or (s != "0" and s[0] == "0") or not s.isascii():
        raise ProtoError("BAD_REQUEST: non-canonical number")
    return int(s)


def verify_checkpoint(cp, origin, broker_id, pk):
    """Returns (size, root, time_ms)."""
    if len(cp) > 1024:
        raise ProtoError("BAD_REQUEST: checkpoint too long")
    text = cp.decode("utf-8")
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in text):
        raise ProtoError("BAD_REQUEST: control byte")
    if not text.endswith("\n"):
        raise ProtoError("BAD_REQUEST: no final newline")
    lines = text[:-1].split("\n")
    if len(lines) != 6 or lines[4] != "":
        raise ProtoError("BAD_REQUEST: not six lines")
    if lines[0] != origin:
        raise ProtoError("BAD_REQUEST: origin %r, want %r" % (lines[0], origin))
    size = _canon_dec(lines[1])
    root = _canon_b64(lines[2], 32)
    if not lines[3].startswith("time "):
        raise ProtoError("BAD_REQUEST: no time line")
    t = _canon_dec(lines[3][5:])
    sig_line = lines[5]
    if not sig_line.startswith("\u2014 "):
        raise ProtoError("BAD_REQUEST: signature line")
    name, _, b64 = sig_line[2:].partition(" ")
    raw = _canon_b64(b64, 68)
    if name != broker_id or raw[:4] != note_key_id(name, pk):
        raise ProtoError("BAD_SIGNATURE: key name or id")
    note_text = "\n".join(lines[:4]).encode() + b"\n"
    if not ed_verify(pk, note_text, raw[4:]):
        raise ProtoError("BAD_SIGNATURE: checkpoint")
    return size, root, t
