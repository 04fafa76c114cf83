// Starts Amazon DynamoDB Local bound to a loopback address only.
//
// DynamoDB Local's own main class (ServerRunner) has no host option: its
// DynamoDBProxyServer builds a Jetty `new Server(port)`, whose connector
// listens on every interface (0.0.0.0).  This launcher builds the server the
// same way ServerRunner does (same command-line options: -port, -inMemory,
// -dbPath, -sharedDb, -disableTelemetry, ...), then, before the server is
// started, sets the host of each Jetty connector to 127.0.0.1 (or the value of
// the system property `dynamodblocal.host`).
//
// Compiled by scripts/install-test-servers.sh against DynamoDBLocal.jar and
// run with:
//   java -Djava.library.path=DynamoDBLocal_lib -cp <classes>:DynamoDBLocal.jar \
//        DynamoDBLocalLoopback -inMemory -disableTelemetry -port P
//
// It prints "DynamoDBLocalLoopback listening on HOST:PORT" once the socket is
// bound, and exits non-zero if the server could not be started.

import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public final class DynamoDBLocalLoopback {
    private DynamoDBLocalLoopback() {}

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("dynamodblocal.host", "127.0.0.1");

        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);

        Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
        serverField.setAccessible(true);
        Server jetty = (Server) serverField.get(proxy);

        Connector[] connectors = jetty.getConnectors();
        if (connectors == null || connectors.length == 0) {
            System.err.println("DynamoDBLocalLoopback: Jetty server has no connectors");
            System.exit(2);
        }
        for (Connector connector : connectors) {
            if (!(connector instanceof ServerConnector)) {
                System.err.println("DynamoDBLocalLoopback: unexpected connector type "
                        + connector.getClass().getName());
                System.exit(2);
            }
            ((ServerConnector) connector).setHost(host);
        }

        // DynamoDBProxyServer.start() catches a bind failure (SocketException),
        // prints it and stops Jetty instead of throwing: check the outcome.
        proxy.start();
        if (!jetty.isStarted()) {
            System.err.println("DynamoDBLocalLoopback: server did not start");
            System.exit(1);
        }
        for (Connector connector : jetty.getConnectors()) {
            NetworkConnector nc = (NetworkConnector) connector;
            System.out.println("DynamoDBLocalLoopback listening on "
                    + nc.getHost() + ":" + nc.getLocalPort());
        }
        System.out.flush();
        proxy.join();
    }
}
