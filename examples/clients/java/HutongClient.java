import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A Hutong platform client for seal-system vendors: plain javac with BouncyCastle.
 *
 *   javac -cp /usr/share/java/bcprov.jar -d out *.java
 *   java -cp out:/usr/share/java/bcprov.jar HutongClient demo --base https://... ...
 *
 * Every request is signed as the integration guide §2 says, and every answer's
 * X-Hutong-Signature is checked with the platform certificate before it is used.
 */
public final class HutongClient {
    static final class PlatformException extends Exception {
        private static final long serialVersionUID = 1L;

        PlatformException(String m) {
            super(m);
        }
    }

    /** An answer whose platform signature verified. */
    static final class Answer {
        final int status;
        final Map<String, Object> body;

        Answer(int status, Map<String, Object> body) {
            this.status = status;
            this.body = body;
        }

        String code() {
            return (String) body.get("code");
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> data() {
            return (Map<String, Object>) body.get("data");
        }
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private final String base, appId;
    private final PrivateKey key;
    private final PublicKey platformKey;
    private final HttpClient http;

    HutongClient(String base, String appId, String privateHex, byte[] platformCertDer, String tlsCa)
            throws Exception {
        this.base = base.replaceAll("/+$", "");
        this.appId = appId;
        this.key = Sm.privateKey(privateHex);
        this.platformKey = Sm.certificate(platformCertDer).getPublicKey();
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10));
        if (tlsCa != null) b.sslContext(trusting(tlsCa));
        this.http = b.build();
    }

    /** A TLS context trusting exactly the certificates in a PEM file. */
    static SSLContext trusting(String pemFile) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        int i = 0;
        try (FileInputStream in = new FileInputStream(pemFile)) {
            for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca" + i++, c);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    Map<String, Object> envelope(Map<String, Object> fields) throws Exception {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("version", "1.0");
        p.put("appId", appId);
        p.put("time", Long.toString(System.currentTimeMillis()));
        p.put("nonce", (long) RANDOM.nextInt(100_000_000));
        p.putAll(fields);
        p.put("sign", Sm.sign(key, Sm.canonical(p).getBytes(StandardCharsets.UTF_8)));
        return p;
    }

    private Answer send(String path, byte[] body, String contentType) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                .build();
        HttpResponse<byte[]> resp = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
        String sig = resp.headers().firstValue("X-Hutong-Signature").orElse("");
        if (!Sm.verify(platformKey, resp.body(), sig)) {
            throw new PlatformException(path + ": X-Hutong-Signature does not verify");
        }
        return new Answer(resp.statusCode(), Json.object(new String(resp.body(), StandardCharsets.UTF_8)));
    }

    Answer call(String path, Map<String, Object> fields) throws Exception {
        return send(path, Json.write(envelope(fields)).getBytes(StandardCharsets.UTF_8), "application/json");
    }

    /** document/verify: the file part is signed as the hex SM3 of its bytes. */
    Answer verifyDocument(String fileName, byte[] content) throws Exception {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("file", Sm.hex(Sm.sm3(content)));
        Map<String, Object> p = envelope(f);
        p.remove("file");
        String boundary = "----hutong" + Long.toHexString(RANDOM.nextLong());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Map.Entry<String, Object> e : p.entrySet()) {
            out.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + e.getKey()
                    + "\"\r\n\r\n" + e.getValue() + "\r\n").getBytes(StandardCharsets.UTF_8));
        }
        out.write(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
                + fileName + "\"\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        out.write(content);
        out.write(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return send("/api/v1/document/verify", out.toByteArray(), "multipart/form-data; boundary=" + boundary);
    }

    // --- command line -----------------------------------------------------------------------

    /** One JSON line per call, for people and for the tests that run this example. */
    static void report(String step, Answer a, Map<String, Object> extra) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", step);
        line.put("status", (long) a.status);
        line.put("answer", a.body);
        line.putAll(extra);
        System.out.println(Json.write(line));
        System.out.flush();
    }

    static Map<String, Object> fields(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static Map<String, String> options(String[] args, int from) {
        Map<String, String> o = new HashMap<>();
        for (int i = from; i + 1 < args.length; i += 2) o.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        return o;
    }

    static String need(Map<String, String> o, String name) {
        String v = o.get(name);
        if (v == null) throw new IllegalArgumentException("--" + name + " is required");
        return v;
    }

    static HutongClient client(Map<String, String> o) throws Exception {
        String key = Files.readString(Path.of(need(o, "key")));
        byte[] cert = Sm.pemBody(Files.readString(Path.of(need(o, "platform-cert"))), "CERTIFICATE");
        return new HutongClient(need(o, "base"), need(o, "app-id"), key, cert, o.get("tls-ca"));
    }

    static void keygen(Map<String, String> o) throws Exception {
        Path dir = Path.of(need(o, "out"));
        Files.createDirectories(dir);
        String d = Sm.newPrivateKey();
        Path key = dir.resolve("key.hex");
        Files.deleteIfExists(key);
        Files.createFile(key, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(key, d + "\n");
        Files.writeString(dir.resolve("public.pem"), Sm.pem("PUBLIC KEY", Sm.publicKeyOf(d).getEncoded()));
        System.out.println(dir.resolve("public.pem"));
    }

    /** system/info, seal/filing, seal/query and document/verify, each answer verified. */
    static void demo(Map<String, String> o) throws Exception {
        HutongClient c = client(o);
        report("system/info", c.call("/api/v1/system/info", fields()), Map.of());
        String org = need(o, "org-code");
        if (o.containsKey("seal")) {
            byte[] seal = Files.readAllBytes(Path.of(o.get("seal")));
            report("seal/filing", c.call("/api/v1/seal/filing", fields(
                    "code", o.getOrDefault("business-code", "biz-1"),
                    "name", o.getOrDefault("seal-name", "合同专用章"),
                    "sealType", "01",
                    "certNumber", o.getOrDefault("cert-number", ""),
                    "possessor", o.getOrDefault("possessor", "某某科技有限公司"),
                    "possessorCertNo", org,
                    "possessorType", 1L,
                    "bizType", 1L,
                    "certType", Long.parseLong(o.getOrDefault("cert-type", "2")),
                    "sealData", Base64.getEncoder().encodeToString(seal))), Map.of());
        }
        report("seal/query", c.call("/api/v1/seal/query", fields("orgCode", org, "sealType", "0")), Map.of());
        if (o.containsKey("document")) {
            Path doc = Path.of(o.get("document"));
            report("document/verify", c.verifyDocument(doc.getFileName().toString(), Files.readAllBytes(doc)), Map.of());
        }
    }

    /** The requester's side of routed cloud signing: query, apply, poll, sign, check. */
    @SuppressWarnings("unchecked")
    static int cloudSign(Map<String, String> o) throws Exception {
        HutongClient c = client(o);
        String org = need(o, "org-code"), sealCode = need(o, "seal-code");
        Answer a = c.call("/api/v1/seal/query", fields("orgCode", org, "sealType", "0", "certType", 2L));
        report("seal/query", a, Map.of());
        Map<String, Object> seal = null;
        for (Object s : (List<Object>) a.body.get("data")) {
            if (sealCode.equals(((Map<String, Object>) s).get("sealCode"))) seal = (Map<String, Object>) s;
        }
        if (seal == null) throw new PlatformException("seal " + sealCode + " not listed");
        Map<String, Object> cert = (Map<String, Object>) ((List<Object>) seal.get("certList")).get(0);
        PublicKey signer = Sm.certificate(Base64.getDecoder().decode((String) cert.get("signPublicKey"))).getPublicKey();

        a = c.call("/api/v1/cloud/auth/apply", fields("sealCode", sealCode,
                "mobile", o.getOrDefault("mobile", "13812345678"),
                "name", o.getOrDefault("signer-name", "张三"), "orgCode", org));
        report("cloud/auth/apply", a, Map.of());
        if (!"0".equals(a.code())) return 1;
        String authId = (String) a.data().get("authId");
        long deadline = System.currentTimeMillis() + 10_000;
        do {
            a = c.call("/api/v1/cloud/auth/result", fields("authId", authId, "sealCode", sealCode));
            if (!"30007".equals(a.code())) break;
            Thread.sleep(200);
        } while (System.currentTimeMillis() < deadline);
        report("cloud/auth/result", a, Map.of());
        if (!"0".equals(a.code())) return 1;

        byte[] e = Sm.messageDigest(signer, o.getOrDefault("message", "DER of an OFD TBS_Sign").getBytes(StandardCharsets.UTF_8));
        a = c.call("/api/v1/cloud/sign", fields("sealCode", sealCode, "authId", authId,
                "authCode", a.data().get("authCode"), "type", "P1",
                "docHash", Base64.getEncoder().encodeToString(e),
                "credentNo", o.getOrDefault("credent-no", "11010519491231002X"), "orgCode", org,
                "signId", seal.get("signId"), "hashType", 4L));
        boolean ok = "0".equals(a.code())
                && Sm.verifyDigest(signer, e, Base64.getDecoder().decode((String) a.data().get("signData")));
        report("cloud/sign", a, Map.of("signDataVerified", ok));
        return !"0".equals(a.code()) || ok ? 0 : 1;
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: HutongClient keygen|demo|cloud-sign --option value ...");
            System.exit(64);
        }
        Map<String, String> o = options(args, 1);
        try {
            switch (args[0]) {
                case "keygen": keygen(o); break;
                case "demo": demo(o); break;
                case "cloud-sign": System.exit(cloudSign(o)); break;
                default: throw new IllegalArgumentException("unknown command " + args[0]);
            }
        } catch (PlatformException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(2);
        }
    }
}
