FEATURE(`loose_relay_check')dnl
