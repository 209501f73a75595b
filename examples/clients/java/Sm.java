import java.io.ByteArrayInputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.gm.GMNamedCurves;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.crypto.digests.SM3Digest;
import org.bouncycastle.jcajce.provider.asymmetric.ec.BCECPublicKey;
import org.bouncycastle.jcajce.spec.SM2ParameterSpec;
import org.bouncycastle.jce.ECNamedCurveTable;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.jce.spec.ECParameterSpec;
import org.bouncycastle.jce.spec.ECPrivateKeySpec;
import org.bouncycastle.jce.spec.ECPublicKeySpec;
import org.bouncycastle.math.ec.ECPoint;

/**
 * What the integration guide's §2 asks of a client, with BouncyCastle (Debian libbcprov-java):
 * the canonical string, SM2 with SM3 and signer ID 1234567812345678 (DER, Base64), SM3, and the
 * pre-hashed SM2 of digest signing (cloud/sign P1), which the JCA signature does not offer.
 */
final class Sm {
    static final byte[] SIGNER_ID = "1234567812345678".getBytes(StandardCharsets.US_ASCII);
    static final X9ECParameters CURVE = GMNamedCurves.getByName("sm2p256v1");
    // A named-curve spec, so encoded keys carry the SM2 curve OID rather than explicit parameters.
    static final ECParameterSpec SPEC = ECNamedCurveTable.getParameterSpec("sm2p256v1");
    private static final SecureRandom RANDOM = new SecureRandom();

    static {
        Security.addProvider(new BouncyCastleProvider());
    }

    /** Every parameter except sign, without null and "", sorted by name bytes, name=value joined by &. */
    static String canonical(Map<String, Object> params) {
        List<String> names = new ArrayList<>();
        for (Map.Entry<String, Object> e : params.entrySet()) {
            Object v = e.getValue();
            if (e.getKey().equals("sign") || v == null || "".equals(v)) continue;
            names.add(e.getKey());
        }
        // Byte order of the UTF-8 names (String.compareTo is UTF-16 order).
        names.sort((a, b) -> java.util.Arrays.compareUnsigned(
                a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8)));
        StringBuilder out = new StringBuilder();
        for (String n : names) {
            if (out.length() > 0) out.append('&');
            Object v = params.get(n);
            out.append(n).append('=').append(v instanceof String ? (String) v : Json.write(v));
        }
        return out.toString();
    }

    static byte[] sm3(byte[] data) {
        SM3Digest d = new SM3Digest();
        d.update(data, 0, data.length);
        byte[] out = new byte[32];
        d.doFinal(out, 0);
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }

    static PrivateKey privateKey(String hex) throws Exception {
        return KeyFactory.getInstance("EC", "BC")
                .generatePrivate(new ECPrivateKeySpec(new BigInteger(hex.trim(), 16), SPEC));
    }

    static PublicKey publicKeyOf(String privateHex) throws Exception {
        ECPoint q = CURVE.getG().multiply(new BigInteger(privateHex.trim(), 16)).normalize();
        return KeyFactory.getInstance("EC", "BC").generatePublic(new ECPublicKeySpec(q, SPEC));
    }

    static String newPrivateKey() {
        BigInteger d;
        do {
            d = new BigInteger(256, RANDOM);
        } while (d.signum() == 0 || d.compareTo(CURVE.getN().subtract(BigInteger.ONE)) >= 0);
        return String.format("%064x", d);
    }

    static String pem(String label, byte[] der) {
        String b64 = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
        return "-----BEGIN " + label + "-----\n" + b64 + "\n-----END " + label + "-----\n";
    }

    static byte[] pemBody(String text, String label) {
        String begin = "-----BEGIN " + label + "-----", end = "-----END " + label + "-----";
        int a = text.indexOf(begin), b = text.indexOf(end);
        if (a < 0 || b < a) throw new IllegalArgumentException("no " + label + " PEM");
        return Base64.getMimeDecoder().decode(text.substring(a + begin.length(), b));
    }

    static X509Certificate certificate(byte[] der) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509", "BC")
                .generateCertificate(new ByteArrayInputStream(der));
    }

    /** Base64 DER SM2-with-SM3 signature, ID 1234567812345678. */
    static String sign(PrivateKey key, byte[] message) throws Exception {
        Signature s = Signature.getInstance("SM3withSM2", "BC");
        s.setParameter(new SM2ParameterSpec(SIGNER_ID)); // never rely on a library's default ID
        s.initSign(key);
        s.update(message);
        return Base64.getEncoder().encodeToString(s.sign());
    }

    static boolean verify(PublicKey key, byte[] message, String signatureB64) {
        try {
            Signature s = Signature.getInstance("SM3withSM2", "BC");
            s.setParameter(new SM2ParameterSpec(SIGNER_ID));
            s.initVerify(key);
            s.update(message);
            return s.verify(Base64.getDecoder().decode(signatureB64));
        } catch (Exception e) {
            return false;
        }
    }

    /** Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA). */
    static byte[] za(PublicKey key) {
        ECPoint q = ((BCECPublicKey) key).getQ().normalize();
        ECPoint g = CURVE.getG().normalize();
        SM3Digest d = new SM3Digest();
        d.update((byte) (SIGNER_ID.length * 8 >> 8));
        d.update((byte) (SIGNER_ID.length * 8));
        for (byte[] part : new byte[][] {SIGNER_ID, CURVE.getCurve().getA().getEncoded(),
                CURVE.getCurve().getB().getEncoded(), g.getAffineXCoord().getEncoded(),
                g.getAffineYCoord().getEncoded(), q.getAffineXCoord().getEncoded(),
                q.getAffineYCoord().getEncoded()}) {
            d.update(part, 0, part.length);
        }
        byte[] out = new byte[32];
        d.doFinal(out, 0);
        return out;
    }

    /** e = SM3(Z_A || M), the digest an SM2 signature with SM3 signs. */
    static byte[] messageDigest(PublicKey key, byte[] message) {
        byte[] z = za(key);
        byte[] zm = new byte[z.length + message.length];
        System.arraycopy(z, 0, zm, 0, z.length);
        System.arraycopy(message, 0, zm, z.length, message.length);
        return sm3(zm);
    }

    /** DER SM2 signature over a ready digest e (GB/T 32918.2 §6.1 from step A3). */
    static byte[] signDigest(String privateHex, byte[] e) throws Exception {
        BigInteger n = CURVE.getN(), d = new BigInteger(privateHex.trim(), 16);
        BigInteger ev = new BigInteger(1, e);
        while (true) {
            BigInteger k = new BigInteger(256, RANDOM).mod(n);
            if (k.signum() == 0) continue;
            BigInteger x1 = CURVE.getG().multiply(k).normalize().getAffineXCoord().toBigInteger();
            BigInteger r = ev.add(x1).mod(n);
            if (r.signum() == 0 || r.add(k).equals(n)) continue;
            BigInteger s = d.add(BigInteger.ONE).modInverse(n).multiply(k.subtract(r.multiply(d))).mod(n);
            if (s.signum() == 0) continue;
            return new DERSequence(new ASN1Integer[] {new ASN1Integer(r), new ASN1Integer(s)}).getEncoded();
        }
    }

    static boolean verifyDigest(PublicKey key, byte[] e, byte[] der) {
        try {
            ASN1Sequence seq = ASN1Sequence.getInstance(ASN1Primitive.fromByteArray(der));
            BigInteger r = ASN1Integer.getInstance(seq.getObjectAt(0)).getValue();
            BigInteger s = ASN1Integer.getInstance(seq.getObjectAt(1)).getValue();
            BigInteger n = CURVE.getN();
            if (r.signum() <= 0 || r.compareTo(n) >= 0 || s.signum() <= 0 || s.compareTo(n) >= 0) return false;
            BigInteger t = r.add(s).mod(n);
            if (t.signum() == 0) return false;
            // The key's point may belong to another instance of the curve: bring it onto CURVE's.
            ECPoint q = CURVE.getCurve().importPoint(((BCECPublicKey) key).getQ());
            ECPoint p = CURVE.getG().multiply(s).add(q.multiply(t)).normalize();
            return new BigInteger(1, e).add(p.getAffineXCoord().toBigInteger()).mod(n).equals(r);
        } catch (Exception ex) {
            return false;
        }
    }

    private Sm() {}
}
