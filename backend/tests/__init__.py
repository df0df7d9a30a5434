"""stockfeed's tests, a package: helpers are imported absolutely (`from tests.servers
import Server`, `from tests.wsutil import recv_json`), never through conftest.py."""
