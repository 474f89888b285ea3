# the env file provbus-consumer writes (consumer.env_file)
default['app']['provbus_env_file'] = '/etc/provbus/app.env'
default['app']['config_file'] = '/etc/app/app.yml'
