"""A content filter for test_milter.py, built on libmilter (python3-milter): run as
`milter_filter.py PORT LOG`, it listens on 127.0.0.1:PORT and writes what each message showed it
as a JSON line to LOG. Its verdict follows the Subject: "reject" (550 with its own text),
"tempfail", "discard", "stall" (no answer at the end); else it accepts, adding X-Filter, marking
the Subject and deleting any X-Remove field. It answers no header and no connect (@noreply), so
the MTA must not wait for those replies."""
import json
import sys
import time

import Milter


class Filter(Milter.Base):
    def __init__(self):
        self.seen = {"rcpts": [], "headers": [], "body": ""}

    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        self.seen.update(client=hostname, addr=hostaddr[0] if hostaddr else None,
                         client_addr=self.getsymval("{client_addr}"), j=self.getsymval("j"))
        return Milter.CONTINUE

    def hello(self, name):
        self.seen["helo"] = name
        return Milter.CONTINUE

    def envfrom(self, sender, *params):
        self.seen.update(mail=sender, auth=self.getsymval("{auth_authen}"))
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *params):
        self.seen["rcpts"].append(rcpt)
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name, value):
        self.seen["headers"].append([name, value])
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        self.seen["body"] += chunk.decode("latin-1")
        return Milter.CONTINUE

    def eom(self):
        self.seen["qid"] = self.getsymval("{i}")
        with open(sys.argv[2], "a") as log:
            log.write(json.dumps(self.seen) + "\n")
        subject = next((v for n, v in self.seen["headers"] if n.lower() == "subject"), "")
        if "reject" in subject:
            self.setreply("550", "5.7.1", "Spam detected: score 99")
            return Milter.REJECT
        if "tempfail" in subject:
            return Milter.TEMPFAIL
        if "discard" in subject:
            return Milter.DISCARD
        if "stall" in subject:
            time.sleep(30)
        self.addheader("X-Filter", "checked %d recipient(s)" % len(self.seen["rcpts"]))
        self.chgheader("Subject", 1, "[filtered] " + subject)
        if any(n.lower() == "x-remove" for n, _ in self.seen["headers"]):
            self.chgheader("X-Remove", 1, "")
        return Milter.ACCEPT


Milter.factory = Filter
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS)
Milter.runmilter("postern-test", "inet:%s@127.0.0.1" % sys.argv[1], 60)
