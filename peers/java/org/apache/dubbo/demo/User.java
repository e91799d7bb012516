package org.apache.dubbo.demo;

import java.io.Serializable;

/** Demo POJO of the peers' service contract (fields in contract order). */
public class User implements Serializable {
    private static final long serialVersionUID = 1L;

    public long id;
    public String name;
    public int age;
    public String email;

    public User() {}

    public User(long id, String name, int age, String email) {
        this.id = id;
        this.name = name;
        this.age = age;
        this.email = email;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof User)) return false;
        User u = (User) o;
        return id == u.id && age == u.age
            && java.util.Objects.equals(name, u.name)
            && java.util.Objects.equals(email, u.email);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(id, name, age, email);
    }
}
