function heroku(name, app)
  cname(concat(name, _a), app .. ".herokudns.com")
end
