# Runs cloud-init's own user-data processing (Debian's cloud-init, unpacked
# by `go tool mage test`) on the user data read from stdin, the way
# cloud-init's "consume_data" stage walks it with no handler for our type:
# prints one "part <content type>" line per part and one "warning ..." line
# per warning cloud-init logs. An exception exits non-zero.
import sys, tempfile
from cloudinit import user_data, handlers
from cloudinit.helpers import Paths

handlers.LOG.warning = lambda fmt, *args: print("warning", fmt % args)
tmp = tempfile.mkdtemp()
msg = user_data.UserDataProcessor(Paths({"cloud_dir": tmp, "run_dir": tmp})).process(sys.stdin.buffer.read())
handlers.walk(msg, handlers.walker_callback, {
    "handlers": {}, "handlerdir": tmp, "data": None,
    "frequency": "once-per-instance", "excluded": [],
})
for part in msg.walk():
    if part.get_content_maintype() != "multipart":
        print("part", part.get_content_type())
