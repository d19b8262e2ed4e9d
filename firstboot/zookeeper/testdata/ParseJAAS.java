// ParseJAAS reads a JAAS file with the JDK's own parser
// (sun.security.provider.ConfigFile, through Configuration.getInstance) and
// prints, per section named on the command line, each login module and
// option as: section TAB module TAB flag TAB key TAB base64(value).
// sasl_test.go runs it with `java ParseJAAS.java <file> <section>...` to
// check that rendered passwords read back byte for byte.
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.security.URIParameter;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;

public class ParseJAAS {
    public static void main(String[] args) throws Exception {
        Configuration c = Configuration.getInstance("JavaLoginConfig", new URIParameter(new File(args[0]).toURI()));
        for (int i = 1; i < args.length; i++) {
            AppConfigurationEntry[] entries = c.getAppConfigurationEntry(args[i]);
            if (entries == null) {
                System.out.println(args[i] + "\t(none)");
                continue;
            }
            for (AppConfigurationEntry e : entries) {
                Map<String, ?> opts = new TreeMap<>(e.getOptions());
                for (Map.Entry<String, ?> o : opts.entrySet()) {
                    String v = Base64.getEncoder().encodeToString(((String) o.getValue()).getBytes(StandardCharsets.UTF_8));
                    System.out.println(args[i] + "\t" + e.getLoginModuleName() + "\t" + e.getControlFlag() + "\t" + o.getKey() + "\t" + v);
                }
            }
        }
    }
}
