import profile

profile.Profile().run("x")
