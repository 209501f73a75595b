import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A minimal member callback server (integration guide §6): the platform POSTs cloud/auth/apply,
 * cloud/auth/result and cloud/sign with appId = this system's appId and sign made with the
 * platform's key. It checks that envelope exactly as the platform checks its members, confirms
 * the signer's intention after --confirm-delay seconds (a real system waits for the signer),
 * signs digests with the seal signer's key and signs each answer body with its own key.
 *
 *   java -cp out:/usr/share/java/bcprov.jar MemberServer --listen 127.0.0.1:9443 --cert tls.pem \
 *       --tls-key tls-key.pem --platform-cert platform.pem --app-id HT... --key key.hex --signer-key signer.hex
 */
public final class MemberServer {
    static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;

        final String code;

        Refusal(String code, String message) {
            super(message);
            this.code = code;
        }
    }

    static final class Auth {
        final String sealCode;
        final long created = System.currentTimeMillis();
        String authCode;

        Auth(String sealCode) {
            this.sealCode = sealCode;
        }
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    private final String appId, signerKey;
    private final PrivateKey key;
    private final PublicKey platformKey;
    private final long confirmDelayMs, windowMs;
    private final Map<Long, Long> nonces = new HashMap<>();
    private final Map<String, Auth> auths = new ConcurrentHashMap<>();

    MemberServer(Map<String, String> o) throws Exception {
        appId = HutongClient.need(o, "app-id");
        key = Sm.privateKey(Files.readString(Path.of(HutongClient.need(o, "key"))));
        signerKey = Files.readString(Path.of(HutongClient.need(o, "signer-key"))).trim();
        platformKey = Sm.certificate(Sm.pemBody(Files.readString(Path.of(HutongClient.need(o, "platform-cert"))),
                "CERTIFICATE")).getPublicKey();
        confirmDelayMs = (long) (Double.parseDouble(o.getOrDefault("confirm-delay", "1")) * 1000);
        windowMs = Long.parseLong(o.getOrDefault("time-window", "300")) * 1000;
    }

    /** The platform's envelope: version, our appId, time window, signature, then nonce. */
    Map<String, Object> authenticate(byte[] body) throws Refusal {
        Map<String, Object> p;
        try {
            p = Json.object(new String(body, StandardCharsets.UTF_8));
        } catch (RuntimeException e) {
            throw new Refusal("10001", "请求体不是有效的 JSON 对象");
        }
        if (!"1.0".equals(p.get("version"))) throw new Refusal("10002", "不支持的接口版本");
        if (!appId.equals(p.get("appId"))) throw new Refusal("20001", "appId 不是本系统");
        long now = System.currentTimeMillis(), sent;
        try {
            sent = Long.parseLong(String.valueOf(p.get("time")));
        } catch (NumberFormatException e) {
            throw new Refusal("10001", "参数 time 无效");
        }
        if (Math.abs(now - sent) > windowMs) throw new Refusal("20004", "时间戳 time 超出允许的时间窗口");
        Object sign = p.get("sign");
        if (!(sign instanceof String)
                || !Sm.verify(platformKey, Sm.canonical(p).getBytes(StandardCharsets.UTF_8), (String) sign)) {
            throw new Refusal("20003", "平台签名验证失败");
        }
        if (!(p.get("nonce") instanceof Long)) throw new Refusal("10001", "参数 nonce 缺失");
        synchronized (nonces) {
            nonces.values().removeIf(t -> now - t > windowMs);
            if (nonces.putIfAbsent((Long) p.get("nonce"), now) != null) {
                throw new Refusal("20005", "nonce 已使用，请求被视为重放");
            }
        }
        return p;
    }

    static String field(Map<String, Object> p, String name) throws Refusal {
        Object v = p.get(name);
        if (!(v instanceof String) || ((String) v).isEmpty()) throw new Refusal("10001", "参数 " + name + " 缺失");
        return (String) v;
    }

    static String token() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return Sm.hex(b);
    }

    Object authApply(Map<String, Object> p) throws Refusal {
        String sealCode = field(p, "sealCode");
        field(p, "mobile");
        String authId = token();
        auths.put(authId, new Auth(sealCode));
        return HutongClient.fields("authUrl", "https://member.example/confirm/" + authId,
                "clientType", "H5", "authId", authId);
    }

    Object authResult(Map<String, Object> p) throws Refusal {
        String authId = field(p, "authId"), sealCode = field(p, "sealCode");
        Auth a = auths.get(authId);
        if (a == null || !a.sealCode.equals(sealCode)) throw new Refusal("30006", "authId 不存在或已过期");
        if (System.currentTimeMillis() - a.created < confirmDelayMs) throw new Refusal("30007", "签署人尚未完成意愿认证");
        synchronized (a) {
            if (a.authCode == null) a.authCode = token();
        }
        return HutongClient.fields("authCode", a.authCode, "authId", authId);
    }

    Object cloudSign(Map<String, Object> p) throws Exception {
        Auth a = auths.get(field(p, "authId"));
        if (a == null || !a.sealCode.equals(field(p, "sealCode")) || !field(p, "authCode").equals(a.authCode)) {
            throw new Refusal("30007", "意愿认证未完成或 authCode 无效");
        }
        if (!"P1".equals(field(p, "type")) || !Long.valueOf(4).equals(p.get("hashType"))) {
            throw new Refusal("10001", "本示例仅支持 P1 与 hashType 4（SM3）");
        }
        byte[] e;
        try {
            e = Base64.getDecoder().decode(field(p, "docHash"));
        } catch (IllegalArgumentException x) {
            throw new Refusal("10001", "参数 docHash 不是 Base64");
        }
        if (e.length != 32) throw new Refusal("10001", "参数 docHash 应为 32 字节摘要的 Base64");
        // docHash is already e = SM3(Z || M): sign it without hashing again.
        String sig = Base64.getEncoder().encodeToString(Sm.signDigest(signerKey, e));
        return HutongClient.fields("type", "P1", "signData", sig);
    }

    void handle(HttpExchange x) {
        try (x) {
            byte[] body;
            try (InputStream in = x.getRequestBody()) {
                body = in.readNBytes(1024 * 1024);
            }
            Map<String, Object> answer = new java.util.LinkedHashMap<>();
            try {
                if (!"POST".equals(x.getRequestMethod())) throw new Refusal("10001", "仅支持 POST");
                String path = x.getRequestURI().getPath();
                Object data;
                if (path.equals("/cloud/auth/apply")) data = authApply(authenticate(body));
                else if (path.equals("/cloud/auth/result")) data = authResult(authenticate(body));
                else if (path.equals("/cloud/sign")) data = cloudSign(authenticate(body));
                else throw new Refusal("10001", "接口不存在");
                answer.put("code", "0");
                answer.put("message", "成功");
                answer.put("data", data);
            } catch (Refusal r) {
                answer.put("code", r.code);
                answer.put("message", r.getMessage());
                answer.put("data", "");
            }
            byte[] raw = Json.write(answer).getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
            x.getResponseHeaders().set("X-Hutong-Signature", Sm.sign(key, raw));
            x.sendResponseHeaders(200, raw.length);
            try (OutputStream out = x.getResponseBody()) {
                out.write(raw);
            }
        } catch (Exception e) {
            System.err.println("member: " + e);
        }
    }

    /** A TLS context from a PEM certificate and its PKCS#8 PEM key (what openssl req writes). */
    static SSLContext tls(String certFile, String keyFile) throws Exception {
        Certificate cert = java.security.cert.CertificateFactory.getInstance("X.509")
                .generateCertificate(new java.io.FileInputStream(certFile));
        byte[] der = Sm.pemBody(Files.readString(Path.of(keyFile)), "PRIVATE KEY");
        String alg = cert.getPublicKey().getAlgorithm();
        PrivateKey k = KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] pw = "member".toCharArray();
        ks.setKeyEntry("tls", k, pw, new Certificate[] {cert});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = HutongClient.options(args, 0);
        MemberServer m = new MemberServer(o);
        String listen = o.getOrDefault("listen", "127.0.0.1:9443");
        int colon = listen.lastIndexOf(':');
        HttpsServer server = HttpsServer.create(
                new InetSocketAddress(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1))), 16);
        server.setHttpsConfigurator(new HttpsConfigurator(tls(HutongClient.need(o, "cert"), HutongClient.need(o, "tls-key"))));
        server.createContext("/", m::handle);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        System.out.println("{\"listening\":" + server.getAddress().getPort() + "}");
        System.out.flush();
    }
}
